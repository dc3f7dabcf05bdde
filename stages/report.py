"""DVC stages `report_*`: render a papermill notebook to HTML (no inputs); `index` writes reports/index.html.

Every input folder reaches the notebook from dvc.yaml (``--input NAME=PATH``, the notebook's parameter
``NAME``); the other notebook parameters come from params.yaml.
"""

from reasonlab.cli import params, stage_parser
from reasonlab.report import run_notebook, write_index

NOTEBOOK_PARAMS = {
    "base_models": lambda P: {"sample_index": P.report.sample_pid, "models": list(P.models)},
    "paradox": lambda P: {"families": list(P.paradox.families), "objectives": list(P.paradox.finetune.objectives)},
    "quant": lambda P: {"reasoners": list(P.quant.reasoners), "bits": list(P.quant.bits)},
}


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("name", help=f"index | {' | '.join(NOTEBOOK_PARAMS)}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--notebooks", help="the folder of the notebooks (jupytext .py files)")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=PATH", help="an input folder of the notebook")
    a = ap.parse_args()
    inputs = dict(kv.split("=", 1) for kv in a.input)
    if a.name == "index":
        write_index(inputs["reports"], a.out)
        return
    if a.name not in NOTEBOOK_PARAMS:
        raise SystemExit(f"unknown report {a.name!r}; known: index, {', '.join(NOTEBOOK_PARAMS)}")
    if not a.notebooks:
        raise SystemExit("--notebooks is required for a notebook report")
    page = run_notebook(a.name, a.out, {**inputs, **NOTEBOOK_PARAMS[a.name](params(a))}, notebooks=a.notebooks)
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
