"""DVC stages `report_*`: render a papermill notebook to HTML (no inputs); `index` writes reports/index.html.

Every input folder reaches the notebook from dvc.yaml (``--input NAME=PATH``, the notebook's parameter
``NAME``); the other notebook parameters come from params.yaml. This script is every report's, the
base-model report's too, so it reads params.yaml as the foundation's :class:`~reasonlab.params.Params`
and imports no paper code: a paper's values are read from its raw section (typed and checked by the
paper's stages, upstream of its report), and each paper's report depends on its code through its notebook.
"""

from reasonlab.cli import params, stage_parser
from reasonlab.params import Params, ParamsError
from reasonlab.report import run_notebook, write_index


def _raw(P: Params, *key: str) -> list:
    """The list at ``key`` (e.g. ``paradox``, ``families``) of a paper's raw section of params.yaml."""
    node = getattr(P, key[0])
    for i, k in enumerate(key[1:], 2):
        if not isinstance(node, dict) or k not in node:
            raise ParamsError(f"params.yaml: {'.'.join(key[:i])}: missing (the report needs it)")
        node = node[k]
    return list(node)


NOTEBOOK_PARAMS = {
    "base_models": lambda P: {"sample_index": P.report.sample_pid, "models": list(P.models)},
    "paradox": lambda P: {"families": _raw(P, "paradox", "families"),
                          "objectives": _raw(P, "paradox", "finetune", "objectives")},
    "quant": lambda P: {"reasoners": _raw(P, "quant", "reasoners"), "bits": _raw(P, "quant", "bits")},
    "calibration": lambda P: {"reasoners": _raw(P, "quant", "reasoners")},
    "two_bit": lambda P: {"reasoners": _raw(P, "quant", "reasoners")},
    "adaptation": lambda P: {"families": _raw(P, "paradox", "families"),
                             "objectives": _raw(P, "paradox", "adaptation", "objectives")},
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
