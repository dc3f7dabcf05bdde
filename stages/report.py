"""DVC stages `report_*`: render a papermill notebook to HTML (no inputs); `index` writes reports/index.html."""

import argparse

from reasonlab.params import load_params
from reasonlab.report import run_notebook, write_index

NOTEBOOK_PARAMS = {
    "base_models": lambda P: {"eval_dir": "metrics/eval", "pretrain_dir": "metrics/pretrain", "world_dir": "data/world",
                              "sample_index": P.report.sample_pid},
    "paradox": lambda P: {"metrics_dir": "metrics/paradox", "score_dir": "data/paradox/score",
                          "students_dir": "data/paradox/students", "families": list(P.paradox.families),
                          "objectives": list(P.paradox.finetune.objectives)},
    "quant": lambda P: {"metrics_dir": "metrics/quant", "plots_dir": "plots/quant"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name", help=f"index | {' | '.join(NOTEBOOK_PARAMS)}")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.name == "index":
        write_index("reports", a.out)
        return
    if a.name not in NOTEBOOK_PARAMS:
        raise SystemExit(f"unknown report {a.name!r}; known: index, {', '.join(NOTEBOOK_PARAMS)}")
    page = run_notebook(a.name, a.out, NOTEBOOK_PARAMS[a.name](load_params(a.params)))
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
