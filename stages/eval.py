"""DVC stage `eval@<model>`: Avg@k, greedy accuracy and lengths per tier, with 95% intervals."""

from pathlib import Path

import pandas as pd

from reasonlab.cli import finish, params, stage_parser
from reasonlab.evaluate import evaluate_model


def main() -> None:
    ap = stage_parser(__doc__)
    for arg in ("--model", "--world", "--samples", "--metrics"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    P = params(a)
    metrics, records = evaluate_model(a.model, a.world, P.eval, P.seed)
    out = Path(a.samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pd.DataFrame.from_records(records).to_parquet(tmp)
    tmp.replace(out)
    finish(a.metrics, metrics, {t: {k: v for k, v in metrics[t].items() if not k.endswith("ci95")} for t in P.eval.tiers})


if __name__ == "__main__":
    main()
