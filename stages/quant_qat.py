"""DVC stage `quant_qat@<reasoner>-<bits>`: QAT runs (objective x init x seed) at one bit width, exported and evaluated."""

import argparse

from reasonlab.io import write_json
from reasonlab.params import load_params
from reasonlab.quant.pipeline import run_qat_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("reasoner")
    ap.add_argument("bits", type=int)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True, help="full-precision reasoner directory (init and KD teacher)")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--traces", required=True, help="quant_traces output (the QAT training data)")
    ap.add_argument("--ptq", required=True, help="quant_ptq output (PTQ inits)")
    ap.add_argument("--out", required=True, help="directory of exported QAT checkpoints, one per run")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--plots", required=True, help="per-run training and probe-accuracy curves")
    ap.add_argument("--ckpt", default=".ckpt", help="resumable run state (outside DVC outputs)")
    a = ap.parse_args()
    metrics = run_qat_grid(load_params(a.params), a.reasoner, a.bits, a.model, a.world, a.traces, a.ptq, a.out,
                           a.plots, ckpt_root=a.ckpt)
    write_json(a.metrics, metrics)
    print({name: round(r["avg_at_k"], 4) for name, r in metrics["runs"].items()})


if __name__ == "__main__":
    main()
