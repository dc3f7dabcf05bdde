"""Benchmark reasonlab.quant on a random-init Llama model (CPU friendly).

Measures

(a) QAT training-step time vs full-precision training-step time on the same model and
    batch (AdamW, CE loss; static and learnable scales), target overhead <= 1.5x;
(b) PTQ wall time per method (rtn, gptq, awq) and bit width (4, 3, 2), plus the
    per-token KL(FP || PTQ) on a held-out batch as a sanity check of quality;
(c) export: on-disk size and load time, eval (forward) and greedy-generation
    throughput of the exported low-bit checkpoint vs the full-precision checkpoint,
    and the max logit difference between the reloaded checkpoint and the QAT model.

Usage::

    python benchmarks/bench_quant.py --hidden 128 --layers 4

prints a JSON object (also written to ``--out`` if given).  On CPU the compressed-tensors
checkpoint is unpacked to dense weights at load time (there is no low-bit CPU kernel), so
its throughput matches full precision; the win on CPU is the on-disk size.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# llm-compressor logs to *stdout*; keep stdout a single JSON document
os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "ERROR")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from reasonlab.models.losses import ce_loss
from reasonlab.quant.export import export_qat
from reasonlab.quant.fakequant import prepare_qat
from reasonlab.quant.packed import dir_size_bytes, max_logit_diff
from reasonlab.quant.qparams import load_quantized
from reasonlab.quant.ptq import run_ptq
from reasonlab.quant.scheme import QuantScheme

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=128, help="hidden size")
    p.add_argument("--layers", type=int, default=4, help="number of decoder layers")
    p.add_argument("--intermediate", type=int, default=None, help="MLP size (default 4*hidden)")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--kv-heads", type=int, default=2, help="key/value heads")
    p.add_argument("--vocab", type=int, default=256, help="vocabulary size (incl. 4 specials)")
    p.add_argument("--batch", type=int, default=8, help="training / eval batch size")
    p.add_argument("--seq-len", type=int, default=64, help="training / eval sequence length")
    p.add_argument("--group-size", type=int, default=32, help="quantization group size")
    p.add_argument("--qat-bits", type=int, default=4, help="bit width for (a) and (c)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    p.add_argument("--methods", default="rtn,gptq,awq", help="PTQ methods for (b)")
    p.add_argument("--bits", default="4,3,2", help="bit widths for (b)")
    p.add_argument("--calib-samples", type=int, default=16, help="calibration sequences")
    p.add_argument("--gen-tokens", type=int, default=32, help="new tokens per greedy generation")
    p.add_argument("--gen-prompts", type=int, default=4, help="prompts (batch) for generation")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1 avoids OpenMP stalls on small shared machines)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.hidden % args.group_size or (args.intermediate or 4 * args.hidden) % args.group_size:
        p.error("--group-size must divide --hidden and --intermediate")
    return args


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    words = [f"t{i}" for i in range(vocab_size - len(SPECIALS))]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_model(args: argparse.Namespace) -> LlamaForCausalLM:
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate or 4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=max(256, 2 * args.seq_len + args.gen_tokens),
        initializer_range=0.05,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    return LlamaForCausalLM(config).eval()


def median_ms(times: list[float]) -> float:
    return round(1000 * statistics.median(times), 3)


def time_train_steps(model: torch.nn.Module, batch: torch.Tensor, steps: int, warmup: int) -> list[float]:
    """Wall time of ``steps`` full training steps (forward, CE, backward, AdamW)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        logits = model(input_ids=batch).logits[:, :-1]
        loss = ce_loss(logits, batch[:, 1:]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    model.eval()
    return times


def bench_qat_step(args, fp: torch.nn.Module, batch: torch.Tensor) -> dict[str, Any]:
    scheme = QuantScheme(args.qat_bits, args.group_size)
    variants: dict[str, Callable[[], torch.nn.Module]] = {
        "fp": lambda: copy.deepcopy(fp),
        "qat_static": lambda: prepare_qat(copy.deepcopy(fp), scheme, init="fp"),
        "qat_learnable": lambda: prepare_qat(copy.deepcopy(fp), scheme, init="fp", learnable_scales=True),
        "qat_dynamic": lambda: prepare_qat(copy.deepcopy(fp), scheme, init="fp", dynamic_scales=True),
    }
    # interleave the variants so that load from other processes hits them equally
    times: dict[str, list[float]] = {k: [] for k in variants}
    built = {k: make() for k, make in variants.items()}
    rounds = 2
    for _ in range(rounds):
        for name, model in built.items():
            times[name] += time_train_steps(model, batch, max(1, args.steps // rounds), args.warmup)
    out: dict[str, Any] = {"scheme": scheme.name, "batch": list(batch.shape)}
    for name in variants:
        out[f"{name}_step_ms"] = median_ms(times[name])
    for name in variants:
        if name != "fp":
            out[f"{name}_overhead"] = round(
                statistics.median(times[name]) / statistics.median(times["fp"]), 3
            )
    out["target_overhead"] = 1.5
    out["meets_target"] = all(out[f"{n}_overhead"] <= 1.5 for n in ("qat_static", "qat_learnable"))
    return out


@torch.no_grad()
def mean_token_kl(reference: torch.nn.Module, model: torch.nn.Module, batch: torch.Tensor) -> float:
    log_p = reference(input_ids=batch).logits.float().log_softmax(-1)
    log_q = model(input_ids=batch).logits.float().log_softmax(-1)
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def bench_ptq(args, fp, tokenizer, calib_texts: list[str], eval_batch: torch.Tensor) -> dict[str, Any]:
    import llmcompressor  # noqa: F401  (import cost excluded from the timings)

    results: dict[str, Any] = {}
    for bits in [int(b) for b in args.bits.split(",")]:
        scheme = QuantScheme(bits, args.group_size)
        for method in args.methods.split(","):
            model = copy.deepcopy(fp)
            start = time.perf_counter()
            run_ptq(model, tokenizer, method, scheme, calib_texts, args.seq_len, seed=args.seed)
            seconds = time.perf_counter() - start
            results[f"{method}_w{bits}"] = {
                "seconds": round(seconds, 3),
                "kl_to_fp": round(mean_token_kl(fp, model, eval_batch), 5),
            }
    return results


@torch.no_grad()
def throughput(
    model: torch.nn.Module, eval_batch: torch.Tensor, prompts: torch.Tensor, gen_tokens: int
) -> dict:
    model.eval()
    model(input_ids=eval_batch)  # warm-up
    reps = 3
    start = time.perf_counter()
    for _ in range(reps):
        model(input_ids=eval_batch)
    eval_s = (time.perf_counter() - start) / reps
    kwargs = dict(max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False, pad_token_id=0)
    model.generate(prompts, **{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
    start = time.perf_counter()
    out = model.generate(prompts, **kwargs)
    gen_s = time.perf_counter() - start
    new_tokens = (out.shape[1] - prompts.shape[1]) * prompts.shape[0]
    return {
        "eval_tokens_per_s": round(eval_batch.numel() / eval_s, 1),
        "gen_tokens_per_s": round(new_tokens / gen_s, 1),
        "_generated": out,
    }


def bench_export(args, fp, tokenizer, train_batch, eval_batch, prompts) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    scheme = QuantScheme(args.qat_bits, args.group_size)
    qat = prepare_qat(copy.deepcopy(fp), scheme, init="fp", learnable_scales=True)
    time_train_steps(qat, train_batch, steps=3, warmup=0)  # move off the init
    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        fp_dir, q_dir = Path(tmp) / "fp", Path(tmp) / "quant"
        fp.save_pretrained(fp_dir)
        tokenizer.save_pretrained(fp_dir)
        start = time.perf_counter()
        export_qat(qat, tokenizer, scheme, q_dir)
        export_s = time.perf_counter() - start

        start = time.perf_counter()
        fp_loaded = AutoModelForCausalLM.from_pretrained(fp_dir).eval()
        fp_load_s = time.perf_counter() - start
        start = time.perf_counter()
        q_loaded = load_quantized(q_dir).eval()
        q_load_s = time.perf_counter() - start

        fp_tp = throughput(fp_loaded, eval_batch, prompts, args.gen_tokens)
        q_tp = throughput(q_loaded, eval_batch, prompts, args.gen_tokens)
        qat_tp = throughput(qat, eval_batch, prompts, args.gen_tokens)
        same_generation = bool(torch.equal(q_tp.pop("_generated"), qat_tp.pop("_generated")))
        fp_tp.pop("_generated")
        fp_bytes, q_bytes = dir_size_bytes(fp_dir), dir_size_bytes(q_dir)
        fp_weights = (fp_dir / "model.safetensors").stat().st_size
        q_weights = (q_dir / "model.safetensors").stat().st_size
        return {
            "scheme": scheme.name,
            "export_seconds": round(export_s, 3),
            "fp_dir_bytes": fp_bytes,
            "quant_dir_bytes": q_bytes,
            "dir_size_ratio": round(q_bytes / fp_bytes, 4),
            "fp_safetensors_bytes": fp_weights,
            "quant_safetensors_bytes": q_weights,
            "safetensors_size_ratio": round(q_weights / fp_weights, 4),
            "fp_load_seconds": round(fp_load_s, 3),
            "quant_load_seconds": round(q_load_s, 3),
            "fp": fp_tp,
            "quant_reloaded": q_tp,
            "qat_fakequant": qat_tp,
            "reload_vs_qat_max_logit_diff_rel": max_logit_diff(qat, q_loaded, eval_batch),
            "greedy_generation_identical": same_generation,
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = build_tokenizer(args.vocab)
    fp = build_model(args)
    g = torch.Generator().manual_seed(args.seed)
    train_batch = torch.randint(4, args.vocab, (args.batch, args.seq_len), generator=g)
    eval_batch = torch.randint(4, args.vocab, (args.batch, args.seq_len), generator=g)
    prompts = torch.randint(4, args.vocab, (args.gen_prompts, 8), generator=g)
    calib_texts = [
        " ".join(f"t{int(i) - 4}" for i in torch.randint(4, args.vocab, (args.seq_len,), generator=g))
        for _ in range(args.calib_samples)
    ]
    n_params = sum(p.numel() for p in fp.parameters())
    result: dict[str, Any] = {
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "parameters": n_params,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "device": "cpu",
        }
    }
    with contextlib.redirect_stdout(sys.stderr):  # any other library chatter goes to stderr
        result["qat_step"] = bench_qat_step(args, fp, train_batch)
        result["ptq"] = bench_ptq(args, fp, tokenizer, calib_texts, eval_batch)
        result["export"] = bench_export(args, fp, tokenizer, train_batch, eval_batch, prompts)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
