"""DVC stage `eval@<model>`: Avg@k, greedy accuracy and lengths per tier, with 95% intervals."""

import argparse
from pathlib import Path

import pandas as pd

from reasonlab.evaluate import evaluate_model
from reasonlab.io import write_json
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True)
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--samples", required=True, help="per-sample parquet")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    P = load_params(a.params)
    metrics, records = evaluate_model(a.model, a.world, P.eval, P.seed)
    out = Path(a.samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pd.DataFrame.from_records(records).to_parquet(tmp)
    tmp.replace(out)
    write_json(a.metrics, metrics)
    print({t: {k: v for k, v in metrics[t].items() if not k.endswith("ci95")} for t in P.eval.tiers})


if __name__ == "__main__":
    main()
