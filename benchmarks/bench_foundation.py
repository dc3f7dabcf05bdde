"""Foundation benchmarks (not tests): training throughput and MFU, batched vs one-at-a-time sampling.

    python benchmarks/bench_foundation.py --model models/qwen --world data/world [--out benchmarks/results/foundation.json]

* peak fp32 matmul rate: best of several square matmuls, measured in this run;
* training throughput of the model's architecture (fresh weights, same size) on real world batches,
  tokens/s and model-FLOPs utilisation = (6 N + 12 L d T) * tokens/s / peak;
* generation: samples/s of batched `generate` (``--batch`` sequences per call) against one prompt,
  one sample per `generate` call, same model, same prompts.
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
from reasonlab.models.data import pretrain_examples
from reasonlab.world.tokenizer import prompt_text
from reasonlab.models.batching import collate
from reasonlab.models.train import masked_loss
from reasonlab.models.losses import ce_loss
from reasonlab.models.zoo import load_causal_lm, n_non_embedding_params
from reasonlab.world.build import load_problems, load_split
from reasonlab.models.zoo import load_tokenizer


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


def train_throughput(model, tok, world: Path, steps: int, batch: int) -> dict:
    from transformers import AutoModelForCausalLM

    fresh = AutoModelForCausalLM.from_config(model.config)
    fresh.train()
    exs, _ = pretrain_examples(load_split(world, "train"), tok, "qwen", 0.1, 0, "bench")
    opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    batches = [collate(exs[i * batch : (i + 1) * batch], tok.pad_token_id, 256) for i in range(steps + 2)]
    for b in batches[:2]:  # warm-up
        loss, _ = masked_loss(fresh, b, ce_loss)
        loss.backward()
        opt.step()
        opt.zero_grad()
    tokens, t = 0, time.perf_counter()
    for b in batches[2:]:
        loss, _ = masked_loss(fresh, b, ce_loss)
        loss.backward()
        opt.step()
        opt.zero_grad()
        tokens += int(b["attention_mask"].sum())
    dt = time.perf_counter() - t
    cfg = fresh.config
    T = float(batches[2]["input_ids"].shape[1])
    n = n_non_embedding_params(fresh)
    flops_per_token = 6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * T
    return {"tokens_per_s": tokens / dt, "step_s": dt / steps, "non_embedding_params": n,
            "flops_per_token": flops_per_token, "achieved_gflops": flops_per_token * tokens / dt / 1e9}


def gen_throughput(model, tok, world: Path, n_prompts: int, batch: int, max_new: int) -> dict:
    prompts = [prompt_text(p.text) for p in load_problems(world, "test_medium")[:n_prompts]]
    cfg = SamplingConfig(n=1, temperature=1.0, max_new_tokens=max_new, seed=0, batch_size=batch)
    generate(model, tok, prompts[:2], cfg)  # warm-up
    t = time.perf_counter()
    out = generate(model, tok, prompts, cfg)
    batched = time.perf_counter() - t
    single_n = min(n_prompts, 32)
    one = SamplingConfig(n=1, temperature=1.0, max_new_tokens=max_new, seed=0, batch_size=1)
    t = time.perf_counter()
    for p in prompts[:single_n]:
        generate(model, tok, [p], one)
    single = (time.perf_counter() - t) / single_n * n_prompts
    toks = sum(s.n_tokens for r in out for s in r)
    # the evaluation path: k=16 samples per prompt, batched (Avg@16)
    k16 = SamplingConfig(n=16, temperature=1.0, max_new_tokens=max_new, seed=0, batch_size=batch)
    t = time.perf_counter()
    generate(model, tok, prompts, k16)
    k16_s = time.perf_counter() - t
    return {"batched_k16_samples_per_s": 16 * n_prompts / k16_s,
            "speedup_k16_vs_one_at_a_time": (16 * n_prompts / k16_s) / (n_prompts / single),
            "prompts": n_prompts, "batched_s": batched, "one_at_a_time_s_extrapolated": single,
            "batched_samples_per_s": n_prompts / batched, "one_at_a_time_samples_per_s": n_prompts / single,
            "batched_new_tokens_per_s": toks / batched, "speedup": single / batched}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/qwen")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gen-prompts", type=int, default=100)
    ap.add_argument("--gen-batch", type=int, default=512)
    ap.add_argument("--max-new", type=int, default=100)
    ap.add_argument("--out", default="benchmarks/results/foundation.json")
    a = ap.parse_args()
    setup_threads()
    model, tok = load_causal_lm(a.model), load_tokenizer(a.model)
    world = Path(a.world)
    res = {"machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
                       "torch": torch.__version__}, "model": a.model}
    res["peak_fp32_matmul_gflops"] = peak_matmul_gflops()
    res["train"] = train_throughput(model, tok, world, a.train_steps, a.batch)
    res["train"]["mfu"] = res["train"]["achieved_gflops"] / res["peak_fp32_matmul_gflops"]
    res["generate"] = gen_throughput(model, tok, world, a.gen_prompts, a.gen_batch, a.max_new)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
