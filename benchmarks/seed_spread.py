"""Training-seed spread of the base models on a fixed world (not a test).

    python benchmarks/seed_spread.py --params params.yaml --world data/world --work /tmp/seed_spread \\
        --model qwen --seeds 1,2 [--model llama --seeds 1]

Pretrains ``model`` exactly as the ``pretrain`` stage does, but with the training seed ``s`` (initial weights and
batch order; the world, its test problems and the evaluation's sampling seed stay those of ``params``), then
evaluates it as the ``eval`` stage does. Together with the committed ``metrics/eval/<model>.json`` (seed 0),
this is the seed-to-seed spread that any change to training numerics must be judged against. Prints one JSON
line per (model, seed), prefixed ``RESULT``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reasonlab.evaluate import evaluate_model
from reasonlab.models.pretrain import pretrain
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--work", required=True, help="scratch folder for the models and their checkpoints")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--seeds", action="append", required=True, help="comma-separated, one per --model")
    a = ap.parse_args()
    if len(a.model) != len(a.seeds):
        raise SystemExit("seed_spread: give one --seeds per --model")
    P = load_params(a.params)
    work = Path(a.work)
    for name, seeds in zip(a.model, a.seeds):
        for s in (int(x) for x in seeds.split(",")):
            t = time.time()
            out = work / f"{name}-s{s}"
            m = pretrain(P.model_copy(update={"seed": s}), name, a.world, out, ckpt_root=work / ".ckpt")
            ev, _ = evaluate_model(out, a.world, P.eval, P.seed)
            k = P.eval.k
            print("RESULT", json.dumps({"model": name, "train_seed": s, "final_loss": m.get("final_loss"),
                                        "wall_s": round(time.time() - t, 1),
                                        **{t_: round(100 * ev[t_][f"avg@{k}"], 1) for t_ in P.eval.tiers},
                                        "greedy_medium": ev.get("medium", {}).get("greedy")}), flush=True)


if __name__ == "__main__":
    main()
