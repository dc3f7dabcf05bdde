"""DVC stage `quant_ptq@<reasoner>`: the FP reference and every PTQ model (method x bits), saved packed and evaluated."""

import argparse

from reasonlab.io import write_json
from reasonlab.params import load_params
from reasonlab.quant.pipeline import run_ptq_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("reasoner")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True, help="full-precision reasoner directory")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--traces", required=True, help="quant_traces output (calibration domain `traces`)")
    ap.add_argument("--out", required=True, help="directory of PTQ checkpoints, one per <method>-w<bits>")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    metrics = run_ptq_grid(load_params(a.params), a.reasoner, a.model, a.world, a.traces, a.out)
    write_json(a.metrics, metrics)
    print({name: round(m["avg_at_k"], 4) for name, m in metrics["models"].items()})


if __name__ == "__main__":
    main()
