"""End-to-end tests: PTQ (RTN/GPTQ/AWQ) -> QAT init invariant -> packed export -> reload."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import copy
import json
from pathlib import Path

import pytest
import torch
from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
from safetensors import safe_open
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from reasonlab.models.losses import mixed
from reasonlab.quant.export import EXPORT_LOGIT_TOL, export_qat, materialize_quantized
from reasonlab.quant.fakequant import fake_quant, fakequant_modules, minmax_qparams, prepare_qat
from reasonlab.quant.packed import dir_size_bytes, max_logit_diff
from reasonlab.quant.ptq import awq_mappings, run_ptq, save_quantized
from reasonlab.quant.qparams import load_quantized, read_quant_params
from reasonlab.quant.scheme import QuantScheme, targeted_modules

SCHEME = QuantScheme(bits=4, group_size=32)
WORDS = [f"w{i}" for i in range(90)]
ARCHS = ("llama", "qwen2", "qwen3")
METHODS = ("rtn", "gptq", "awq")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def calib_texts() -> list[str]:
    g = torch.Generator().manual_seed(0)
    return [
        " ".join(WORDS[j] for j in torch.randint(0, len(WORDS), (int(n),), generator=g).tolist())
        for n in torch.randint(12, 30, (8,), generator=g)
    ]


@pytest.fixture(scope="module")
def input_ids(tokenizer) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(4, len(tokenizer), (2, 12), generator=g)


def make_model(arch: str, seed: int = 0):
    """Tiny random causal LM (hidden 64, 2 layers, GQA 4/2 heads, vocab 94)."""
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(WORDS) + 4,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.1,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    elif arch == "qwen3":  # tied embeddings + q/k norms
        model = Qwen3ForCausalLM(Qwen3Config(**common, head_dim=16, tie_word_embeddings=True))
    else:
        raise ValueError(arch)
    return model.eval()


@torch.no_grad()
def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits


_PTQ_CACHE: dict[tuple[str, str, QuantScheme], tuple] = {}


def ptq_pair(arch: str, method: str, tokenizer, calib_texts, scheme: QuantScheme = SCHEME):
    """(fp_model, ptq_model), cached per module run (oneshot is the expensive part)."""
    key = (arch, method, scheme)
    if key not in _PTQ_CACHE:
        fp = make_model(arch)
        ptq = run_ptq(copy.deepcopy(fp), tokenizer, method, scheme, calib_texts, max_seq_len=32, seed=0)
        _PTQ_CACHE[key] = (fp, ptq)
    return _PTQ_CACHE[key]


# ---------------------------------------------------------------------------- PTQ
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_qat_from_ptq_reproduces_ptq_logits(arch, method, tokenizer, calib_texts, input_ids):
    fp, ptq = ptq_pair(arch, method, tokenizer, calib_texts)
    params = read_quant_params(ptq)
    assert list(params) == [n for n, _ in targeted_modules(fp, SCHEME)]
    assert "lm_head" not in params and len(params) == 14
    for p in params.values():
        assert p.scale.shape == (p.weight.shape[0], p.weight.shape[1] // 32)
        assert p.zero_point.dtype == torch.int8 and p.zero_point.shape == p.scale.shape
        assert SCHEME.matches_args(p.args)
        if method == "gptq":  # GPTQ writes grid values into the weight
            assert torch.equal(fake_quant(p.weight, p.scale, p.zero_point, SCHEME), p.weight)
    if method == "awq":  # AWQ smooths: norms are rescaled
        assert not torch.equal(
            ptq.model.layers[0].input_layernorm.weight, fp.model.layers[0].input_layernorm.weight
        )

    ptq_logits = logits_of(ptq, input_ids)
    assert (ptq_logits - logits_of(fp, input_ids)).abs().max() > 1e-3  # quantization is active
    qat = prepare_qat(copy.deepcopy(fp), SCHEME, init="ptq", ptq_model=ptq)
    assert len(list(fakequant_modules(qat))) == 14
    qat_logits = logits_of(qat, input_ids)
    torch.testing.assert_close(qat_logits, ptq_logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_qat_fp_init_equals_rtn(arch, tokenizer, calib_texts, input_ids):
    fp, rtn = ptq_pair(arch, "rtn", tokenizer, calib_texts)
    qat = prepare_qat(copy.deepcopy(fp), SCHEME, init="fp")
    rtn_params = read_quant_params(rtn)
    for name, layer in fakequant_modules(qat):  # same observer: identical qparams
        assert torch.equal(layer.weight_scale, rtn_params[name].scale)
        assert torch.equal(layer.weight_zero_point.to(torch.int8), rtn_params[name].zero_point)
    torch.testing.assert_close(logits_of(qat, input_ids), logits_of(rtn, input_ids), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "scheme",
    [QuantScheme(2, 32, symmetric=True), QuantScheme(3, 64), QuantScheme(8, 32)],
    ids=lambda s: s.name,
)
def test_other_bit_widths_gptq(scheme, tokenizer, calib_texts, input_ids):
    fp, ptq = ptq_pair("llama", "gptq", tokenizer, calib_texts, scheme)
    params = read_quant_params(ptq)
    codes_range = [
        int(
            (
                (p.weight.unflatten(-1, (-1, scheme.group_size)) / p.scale.unsqueeze(-1)).round()
                + p.zero_point.unsqueeze(-1)
            )
            .abs()
            .max()
        )
        for p in params.values()
    ]
    assert max(codes_range) <= 2 ** (scheme.bits - 1)
    if scheme.symmetric:
        assert all(bool((p.zero_point == 0).all()) for p in params.values())
    qat = prepare_qat(copy.deepcopy(fp), scheme, init="ptq", ptq_model=ptq)
    torch.testing.assert_close(logits_of(qat, input_ids), logits_of(ptq, input_ids), rtol=0, atol=1e-6)


def test_run_ptq_validation(tokenizer, calib_texts):
    model = make_model("llama")
    with pytest.raises(ValueError, match="method"):
        run_ptq(model, tokenizer, "smoothquant", SCHEME, calib_texts, 32)
    with pytest.raises(ValueError, match="group_size"):
        run_ptq(model, tokenizer, "rtn", QuantScheme(4, 48), calib_texts, 32)
    with pytest.raises(ValueError, match="calib_texts"):
        run_ptq(model, tokenizer, "gptq", SCHEME, [], 32)
    with pytest.raises(ValueError, match="max_seq_len"):
        run_ptq(model, tokenizer, "gptq", SCHEME, calib_texts, 0)
    with pytest.raises(ValueError, match="method_kwargs"):
        run_ptq(model, tokenizer, "rtn", SCHEME, calib_texts, 32, method_kwargs={"n_grid": 3})
    _, rtn = ptq_pair("llama", "rtn", tokenizer, calib_texts)
    with pytest.raises(ValueError, match="already quantized"):
        run_ptq(rtn, tokenizer, "rtn", SCHEME, calib_texts, 32)
    with pytest.raises(ValueError, match="PTQ model"):
        prepare_qat(rtn, SCHEME, init="fp")


def test_run_ptq_restores_rng_and_is_deterministic(tokenizer, calib_texts, input_ids):
    state = torch.random.get_rng_state()
    a = run_ptq(
        make_model("llama"), tokenizer, "awq", SCHEME, calib_texts, 32, seed=3, method_kwargs={"n_grid": 5}
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    b = run_ptq(
        make_model("llama"), tokenizer, "awq", SCHEME, calib_texts, 32, seed=3, method_kwargs={"n_grid": 5}
    )
    assert torch.equal(logits_of(a, input_ids), logits_of(b, input_ids))


def test_awq_unsupported_architecture(tokenizer, calib_texts):
    torch.manual_seed(0)
    opt = OPTForCausalLM(
        OPTConfig(
            vocab_size=94,
            hidden_size=64,
            num_hidden_layers=1,
            ffn_dim=128,
            num_attention_heads=4,
            word_embed_proj_dim=64,
            max_position_embeddings=64,
        )
    )
    with pytest.raises(ValueError, match="OPTForCausalLM"):
        awq_mappings(opt)
    with pytest.raises(ValueError, match="AWQ is not supported for architecture 'OPTForCausalLM'"):
        run_ptq(opt, tokenizer, "awq", SCHEME, calib_texts, 32)
    assert len(awq_mappings(make_model("qwen3"))) == 4


# ------------------------------------------------------------------ saving / loading
def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_save_quantized_roundtrip(method, tokenizer, calib_texts, input_ids, tmp_path):
    fp, ptq = ptq_pair("llama", method, tokenizer, calib_texts)
    before = logits_of(ptq, input_ids)
    out = save_quantized(ptq, tokenizer, tmp_path / "ptq", metadata={"method": method})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ptq"]  # no temp leftovers
    assert ptq.model.layers[0].self_attn.q_proj.weight is not None  # in-memory model untouched
    torch.testing.assert_close(logits_of(ptq, input_ids), before, rtol=0, atol=0)

    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["format"] == "pack-quantized" and config["quant_method"] == "compressed-tensors"
    assert config["ignore"] == ["lm_head"]
    weights = config["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["symmetric"]) == (4, 32, False)
    tensors = _safetensors(out)
    assert tensors["model.layers.0.mlp.down_proj.weight_packed"].dtype == torch.int32
    assert "model.layers.0.mlp.down_proj.weight" not in tensors
    assert tensors["lm_head.weight"].dtype == torch.float32
    assert json.loads((out / "reasonlab_quant.json").read_text()) == {"method": method}

    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    torch.testing.assert_close(logits_of(reloaded, input_ids), before, rtol=0, atol=1e-6)
    qat = prepare_qat(copy.deepcopy(fp), SCHEME, init="ptq", ptq_model=out)  # from the packed checkpoint
    torch.testing.assert_close(logits_of(qat, input_ids), before, rtol=0, atol=1e-6)
    with pytest.raises(FileExistsError):
        save_quantized(ptq, tokenizer, out)


# ------------------------------------------------------------------------- export
def _train_a_few_steps(model, teacher, ids: torch.Tensor, steps: int = 3) -> None:
    """Move weights (and learnable scales) off their initial values with a KD+CE loss."""
    loss_fn = mixed({"ce": 0.5, "forward_kl": 0.5}, temperature=2.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        teacher_logits = teacher(input_ids=ids).logits[:, :-1]
    model.train()
    for _ in range(steps):
        logits = model(input_ids=ids).logits[:, :-1]
        loss = loss_fn(logits, ids[:, 1:], teacher_logits).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize(
    "arch, scheme, learnable",
    [
        ("llama", QuantScheme(4, 32), True),
        ("qwen3", QuantScheme(3, 32, symmetric=True), False),
        ("llama", QuantScheme(2, 64), True),
    ],
    ids=["llama-w4g32asym-lsq", "qwen3-w3g32sym", "llama-w2g64asym-lsq"],
)
def test_export_qat_roundtrip(arch, scheme, learnable, tokenizer, input_ids, tmp_path):
    fp = make_model(arch)
    qat = prepare_qat(copy.deepcopy(fp), scheme, init="fp", learnable_scales=learnable)
    _train_a_few_steps(qat, fp, input_ids)
    qat_logits = logits_of(qat, input_ids)

    materialized = materialize_quantized(qat, scheme)
    torch.testing.assert_close(logits_of(materialized, input_ids), qat_logits, rtol=0, atol=1e-6)
    out = export_qat(qat, tokenizer, scheme, tmp_path / "export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert json.loads((out / "reasonlab_quant.json").read_text())["scheme"] == scheme.to_dict()

    # real packed integers on disk, equal to the QAT layers' codes
    tensors = _safetensors(out)
    for name, layer in fakequant_modules(qat):
        packed = tensors[f"{name}.weight_packed"]
        assert packed.dtype == torch.int32
        assert packed.numel() * 32 == layer.weight.numel() * scheme.bits
        codes = unpack_from_int32(packed, scheme.bits, torch.Size(layer.weight.shape))
        assert torch.equal(codes.to(torch.int8), layer.integer_weight())
        torch.testing.assert_close(tensors[f"{name}.weight_scale"], layer.export_qparams()[0], rtol=0, atol=0)

    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert max_logit_diff(qat, reloaded, input_ids) <= EXPORT_LOGIT_TOL
    torch.testing.assert_close(logits_of(reloaded, input_ids), qat_logits, rtol=0, atol=1e-6)

    prompts = ["w1 w2 w3", "w40 w41", "w7 w7 w7 w7 w89"]
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
        with torch.no_grad():
            assert torch.equal(qat.generate(ids, **kwargs), reloaded.generate(ids, **kwargs))

    fp_dir = tmp_path / "fp"
    fp.save_pretrained(fp_dir)
    tokenizer.save_pretrained(fp_dir)
    ratio = dir_size_bytes(out) / dir_size_bytes(fp_dir)
    assert ratio < 0.6, ratio  # embeddings / lm_head stay fp32 in this tiny model


def test_export_errors_and_atomicity(tokenizer, input_ids, tmp_path):
    fp = make_model("llama")
    with pytest.raises(ValueError, match="prepare_qat"):
        export_qat(fp, tokenizer, SCHEME, tmp_path / "x")
    qat = prepare_qat(copy.deepcopy(fp), SCHEME)
    with pytest.raises(ValueError, match="scheme"):
        export_qat(qat, tokenizer, QuantScheme(8, 32), tmp_path / "x")
    with pytest.raises(ValueError, match="different layers"):
        export_qat(qat, tokenizer, QuantScheme(4, 32, ignore=("lm_head", "re:.*down_proj$")), tmp_path / "x")

    class _BrokenTokenizer:
        def save_pretrained(self, path):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_qat(qat, _BrokenTokenizer(), SCHEME, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []  # nothing half-written

    out = export_qat(qat, tokenizer, SCHEME, tmp_path / "x")
    with pytest.raises(FileExistsError):
        export_qat(qat, tokenizer, SCHEME, out)
    with torch.no_grad():
        qat.model.layers[0].mlp.down_proj.weight.mul_(2.0)
    export_qat(qat, tokenizer, SCHEME, out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    torch.testing.assert_close(logits_of(reloaded, input_ids), logits_of(qat, input_ids), rtol=0, atol=1e-6)
    assert type(qat.model.layers[0].mlp.down_proj).__name__ == "FakeQuantLinear"  # input untouched


def test_minmax_matches_rtn_scales_after_load(tokenizer, calib_texts, tmp_path):
    """Scales stored in a packed RTN checkpoint are the min-max scales of the FP weights."""
    fp, rtn = ptq_pair("qwen2", "rtn", tokenizer, calib_texts)
    out = save_quantized(rtn, tokenizer, tmp_path / "rtn")
    with pytest.raises(ValueError, match="load_quantized"):
        read_quant_params(AutoModelForCausalLM.from_pretrained(out))  # still packed
    loaded = read_quant_params(load_quantized(out))
    for name, module in targeted_modules(fp, SCHEME):
        scale, zp = minmax_qparams(module.weight, SCHEME)
        assert torch.equal(loaded[name].scale, scale) and torch.equal(loaded[name].zero_point, zp)
