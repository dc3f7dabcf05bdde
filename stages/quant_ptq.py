"""DVC stage `quant_ptq@<reasoner>`: the FP reference and every PTQ model (method x bits), saved packed and evaluated."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.quant.config import QuantParams
from reasonlab.quant.drivers.ptq import run_ptq_grid


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("reasoner")
    for arg in ("--model", "--world", "--traces", "--out", "--metrics"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = run_ptq_grid(params(a, QuantParams), a.reasoner, a.model, a.world, a.traces, a.out)
    finish(a.metrics, m, {name: round(x["avg_at_k"], 4) for name, x in m["models"].items()})


if __name__ == "__main__":
    main()
