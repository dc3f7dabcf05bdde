"""Sampling time of one model's test-tier evaluation at several batch sizes (rows per ``generate`` chunk), and
whether the samples stay identical across them; greedy decoding timed beside it.

    python benchmarks/bench_eval_batch.py --model models/qwen --world data/world --batch 256 512 1024 128
"""

from __future__ import annotations

import argparse
import json
import time

from reasonlab.generate import SamplingConfig, generate
from reasonlab.io import setup_threads
from reasonlab.models.zoo import load_causal_lm, load_tokenizer
from reasonlab.world.tasks import open_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--tiers", nargs="+", default=["easy", "medium", "hard"])
    ap.add_argument("--limit", type=int, default=100, help="problems per tier")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 512])
    args = ap.parse_args()
    setup_threads()
    tok = load_tokenizer(f"{args.world}/tokenizer")
    model = load_causal_lm(args.model)
    task = open_task(args.world)
    prompts = [it.prompt for t in args.tiers for it in task.tier_items(t, args.limit)]
    first = None
    for bs in args.batch:
        t0 = time.perf_counter()
        out = generate(model, tok, prompts, SamplingConfig(args.k, 1.0, 1.0, args.max_new_tokens, 0, bs), desc="sample")
        sampled_s = time.perf_counter() - t0
        texts = [[s.text for s in o] for o in out]
        first = first if first is not None else texts
        t0 = time.perf_counter()
        generate(model, tok, prompts, SamplingConfig(1, 0.0, 1.0, args.max_new_tokens, 0, bs), desc="greedy")
        print(json.dumps({"batch_size": bs, "prompts": len(prompts), "k": args.k, "sampled_s": round(sampled_s, 3),
                          "greedy_s": round(time.perf_counter() - t0, 3), "same_samples": texts == first}), flush=True)


if __name__ == "__main__":
    main()
