"""Pinned numerics (reasonlab.numerics): what a process runs with, the opt-out switch, and thread-count
independence of a short training and a sampling run."""

import hashlib
import os
import subprocess
import sys

import pytest
import torch

from reasonlab import numerics
from reasonlab.generate import SamplingConfig, generate
from reasonlab.models.data import pretrain_examples, prompt_text
from reasonlab.models.train import train
from reasonlab.models.zoo import build_model, load_tokenizer
from reasonlab.world.build import load_problems, load_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = "from reasonlab.cli import finish; import torch, sys; torch.ones(2) @ torch.ones(2); finish(sys.argv[1], {})"


def _stage_like(tmp_path, **env) -> str:
    """Run a process that imports the package and finishes like a stage; return its numerics line (stderr)."""
    full = {**{k: v for k, v in os.environ.items() if k not in numerics.KEYS + (numerics.SWITCH,)}, **env,
            "PYTHONPATH": os.path.join(ROOT, "src")}
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "m.json")], env=full, capture_output=True,
                         text=True, check=True)
    return out.stderr.strip().splitlines()[-1]


def test_a_stage_process_reports_the_pinned_capability(tmp_path):
    assert _stage_like(tmp_path).startswith("numerics avx2 (ATen AVX2, MKL_CBWR=AVX2,STRICT,")


def test_the_switch_changes_the_code_path(tmp_path):
    assert _stage_like(tmp_path, REASONLAB_NUMERICS="compatible").startswith(
        "numerics compatible (ATen DEFAULT, MKL_CBWR=COMPATIBLE,")
    native = _stage_like(tmp_path, REASONLAB_NUMERICS="native")
    assert native.startswith("numerics native (") and "MKL_CBWR=unset" in native
    # a value the user exported wins over the mode's
    assert "MKL_CBWR=COMPATIBLE" in _stage_like(tmp_path, MKL_CBWR="COMPATIBLE")


def test_pin_sets_only_missing_values_and_rejects_a_bad_mode():
    env = {"MKL_CBWR": "AUTO"}
    assert numerics.pin(env) == {"MKL_CBWR": "AUTO", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert numerics.pin({numerics.SWITCH: "native"}) == {}
    with pytest.raises(ValueError, match="REASONLAB_NUMERICS='avx512'"):
        numerics.pin({numerics.SWITCH: "avx512"})


def test_this_process_is_pinned():
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2" or os.environ.get(numerics.SWITCH) in ("native", "compatible")
    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "DEFAULT")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _weights_hash(model) -> str:
    return hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()


def test_training_is_identical_at_1_2_and_4_threads(smoke_params, smoke_world, threads):
    tok = load_tokenizer(smoke_world / "tokenizer")
    spec = smoke_params.model("llama")
    exs, _ = pretrain_examples(load_split(smoke_world, "train"), tok, spec.dialect, spec.other_dialect_share, 0, "llama")
    cfg = smoke_params.train_params("llama").model_copy(update={"steps": 6, "batch_size": 16, "lr": 3e-3})
    hashes = []
    for n in (1, 2, 4):
        torch.set_num_threads(n)
        model = build_model(spec, tok, 0)
        train(model, exs[:64], cfg, pad_id=tok.pad_token_id, seed=0)
        hashes.append(_weights_hash(model))
    assert hashes[0] == hashes[1] == hashes[2]
    # the check can fail: another seed trains other weights
    model = build_model(spec, tok, 0)
    train(model, exs[:64], cfg, pad_id=tok.pad_token_id, seed=1)
    assert _weights_hash(model) != hashes[0]


def test_sampling_is_identical_at_1_2_and_4_threads(smoke_params, smoke_world, threads):
    tok = load_tokenizer(smoke_world / "tokenizer")
    model = build_model(smoke_params.model("qwen"), tok, 0)
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_medium")[:8]]
    cfg = SamplingConfig(n=4, temperature=1.0, max_new_tokens=24, seed=3, batch_size=32)
    runs = []
    for n in (1, 2, 4):
        torch.set_num_threads(n)
        out = generate(model, tok, prompts, cfg)
        ids = tok(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**ids).logits
        runs.append(([[s.text for s in r] for r in out], hashlib.sha256(logits.numpy().tobytes()).hexdigest()))
    assert runs[0] == runs[1] == runs[2]  # the samples, and the logits behind them bit for bit


def _logits_hash(model, ids) -> str:
    with torch.no_grad():
        return hashlib.sha256(model(input_ids=ids).logits.numpy().tobytes()).hexdigest()


def test_quant_ptq_and_qat_are_identical_at_1_and_2_threads(smoke_params, smoke_world, threads):
    """The quant stages run on every core (quant.drivers.QUANT_THREADS): GPTQ and AWQ (llm-compressor) and a
    QAT run (fake-quantized KD from the GPTQ init) give the same bits at 1 and 2 threads (this machine's cores).

    Not at 4: the reasoners are Qwen3 with grouped-query attention (kv_heads < heads), and at 4 threads the
    k_proj / v_proj gradients of a training step differ in the last bits (measured 2026-12-01; SDPA alone, with
    or without ``enable_gqa``, is thread-independent, so the cause is elsewhere in the attention block). The
    llama test above has no GQA and is identical at 4."""
    from reasonlab.models.losses import objective_loss
    from reasonlab.quant.fakequant import prepare_qat
    from reasonlab.quant.ptq import run_ptq
    from reasonlab.quant.scheme import QuantScheme

    tok = load_tokenizer(smoke_world / "tokenizer")
    spec = smoke_params.model("reasoner_s")
    exs, _ = pretrain_examples(load_split(smoke_world, "train"), tok, spec.dialect, 0.0, 0, "reasoner_s")
    texts = [tok.decode(e.prompt_ids + e.target_ids) for e in exs[:16]]
    ids = torch.tensor([(exs[0].prompt_ids + exs[0].target_ids)[:48]])
    scheme = QuantScheme(bits=3, group_size=32)
    cfg = smoke_params.train_params("reasoner_s").model_copy(update={"steps": 4, "batch_size": 8, "lr": 1e-3})
    runs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        fp = build_model(spec, tok, 0)
        gptq, awq = (run_ptq(build_model(spec, tok, 0), tok, m, scheme, texts, 64, seed=0) for m in ("gptq", "awq"))
        row = [_logits_hash(gptq, ids), _logits_hash(awq, ids)]
        student = prepare_qat(build_model(spec, tok, 0), scheme, "ptq", ptq_model=gptq)
        train(student, exs[:32], cfg, pad_id=tok.pad_token_id, seed=0, loss_fn=objective_loss("kd", smoke_params.quant.qat.kd),
              teacher=fp)
        row.append(_weights_hash(student))
        runs.append(row)
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3  # GPTQ, AWQ and the trained student are three different models
