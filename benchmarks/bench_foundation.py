"""Foundation benchmarks (not tests): training throughput, padding and MFU; sampling throughput.

    python benchmarks/bench_foundation.py --model models/qwen --world data/world [--out benchmarks/results/foundation.json]

Every comparison is made in the same run, on the same model and the same inputs:

* peak fp32 matmul rate: best of several square matmuls, measured in this run;
* training (fresh weights of the model's architecture, real world batches, AdamW): padded batches (each padded to
  its longest sequence, as before the speed work) against packed batches (``reasonlab.models.batching.pack``):
  real tokens/s, padding share of the computed positions, and model-FLOPs utilisation
  ``(6 N + 12 L d T) * real tokens/s / peak`` (N non-embedding parameters, L layers, d width, T the batch's
  padded length; the same definition as before);
* sampling: samples/s of the Avg@16 path (16 samples per prompt) through ``reasonlab.generate`` against the same
  through ``transformers``' ``model.generate`` (the implementation before the speed work, kept here as the
  baseline), and against one prompt, one sample per ``model.generate`` call.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from reasonlab.generate import SamplingConfig, generate
from reasonlab.io import setup_threads
from reasonlab.models.batching import collate, pack
from reasonlab.models.data import pretrain_examples
from reasonlab.models.losses import ce_loss
from reasonlab.models.train import masked_loss_sum
from reasonlab.models.zoo import load_lm, n_non_embedding_params
from reasonlab.world.build import load_problems, load_split
from reasonlab.world.tokenizer import prompt_text


def peak_matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = 0.0
    for _ in range(3):
        a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def train_throughput(model, tok, world: Path, steps: int, batch: int, make, peak: float) -> dict:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    fresh = AutoModelForCausalLM.from_config(model.config)
    fresh.train()
    exs, _ = pretrain_examples(load_split(world, "train"), tok, "qwen", 0.1, 0, "bench")
    opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    batches = [make(exs[i * batch : (i + 1) * batch], tok.pad_token_id, 256) for i in range(steps + 2)]

    def step(b):
        total, n = masked_loss_sum(fresh, b, ce_loss)
        (total / n).backward()
        opt.step()
        opt.zero_grad()

    for b in batches[:2]:  # warm-up
        step(b)
    real = computed = 0
    flops = 0.0
    cfg = fresh.config
    n_params = n_non_embedding_params(fresh)
    t = time.perf_counter()
    for b in batches[2:]:
        step(b)
        real += b["n_real"]
        computed += b["n_computed"]
        T = b["input_ids"].shape[1]
        flops += (6 * n_params + 12 * cfg.num_hidden_layers * cfg.hidden_size * T) * b["n_real"]
    dt = time.perf_counter() - t
    return {"tokens_per_s": real / dt, "step_s": dt / steps, "padding_share": 1 - real / computed,
            "non_embedding_params": n_params, "achieved_gflops": flops / dt / 1e9, "mfu": flops / dt / 1e9 / peak}


def _hf_generate(model, tok, prompts, n, max_new, batch, seed=0) -> int:
    """The sampling path before the speed work: left-padded ``model.generate`` per chunk; returns samples made."""
    tok.padding_side = "left"
    per_call = max(1, batch // n)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].split()))
    made = 0
    with torch.inference_mode():
        for ci, s in enumerate(range(0, len(order), per_call)):
            idx = order[s : s + per_call]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(seed * 100003 + ci)
            gen = model.generate(**enc, max_new_tokens=max_new, num_return_sequences=n, do_sample=True,
                                 temperature=1.0, top_p=1.0, top_k=0, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id, use_cache=True)
            made += gen.shape[0]
    return made


def gen_throughput(model, tok, world: Path, n_prompts: int, batch: int, max_new: int, k: int = 16) -> dict:
    prompts = [prompt_text(p.text) for p in load_problems(world, "test_medium")[:n_prompts]]
    model.eval()
    generate(model, tok, prompts[:2], SamplingConfig(n=2, max_new_tokens=8, batch_size=batch))  # warm-up
    _hf_generate(model, tok, prompts[:2], 2, 8, batch)
    t = time.perf_counter()
    out = generate(model, tok, prompts, SamplingConfig(n=k, temperature=1.0, max_new_tokens=max_new, seed=0,
                                                       batch_size=batch))
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    _hf_generate(model, tok, prompts, k, max_new, batch)
    hf_s = time.perf_counter() - t
    single_n = min(n_prompts, 24)
    t = time.perf_counter()
    for p in prompts[:single_n]:
        _hf_generate(model, tok, [p], 1, max_new, 1)
    single_per_sample = (time.perf_counter() - t) / single_n
    samples = k * n_prompts
    return {"prompts": n_prompts, "k": k, "batch": batch, "max_new_tokens": max_new,
            "ours_k_samples_per_s": samples / ours_s,
            "hf_generate_k_samples_per_s": samples / hf_s,
            "one_at_a_time_samples_per_s": 1 / single_per_sample,
            "speedup_vs_hf_generate": hf_s / ours_s,
            "speedup_vs_one_at_a_time": samples / ours_s * single_per_sample,
            "ours_mean_new_tokens": sum(s.n_tokens for r in out for s in r) / samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/qwen")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gen-prompts", type=int, default=64)
    ap.add_argument("--gen-batch", type=int, default=512)
    ap.add_argument("--max-new", type=int, default=160)
    ap.add_argument("--skip", choices=["train", "generate"], action="append", default=[])
    ap.add_argument("--out", default="benchmarks/results/foundation.json")
    a = ap.parse_args()
    setup_threads()
    model, tok = load_lm(a.model)
    world = Path(a.world)
    res = {"machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
                       "processor": platform.processor(), "torch": torch.__version__}, "model": a.model}
    peak = res["peak_fp32_matmul_gflops"] = peak_matmul_gflops()
    if "train" not in a.skip:
        res["train_padded"] = train_throughput(model, tok, world, a.train_steps, a.batch, collate, peak)
        res["train_packed"] = train_throughput(model, tok, world, a.train_steps, a.batch, pack, peak)
    if "generate" not in a.skip:
        res["generate"] = gen_throughput(model, tok, world, a.gen_prompts, a.gen_batch, a.max_new)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
