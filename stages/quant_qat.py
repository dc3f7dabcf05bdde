"""DVC stage `quant_qat@<reasoner>-<bits>`: QAT runs (objective x source x init x seed) at one bit width, exported and
evaluated, with the FP controls and RQ1's paired statistics."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.quant.config import QuantParams
from reasonlab.quant.drivers.qat import run_qat_grid


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("reasoner")
    ap.add_argument("bits", type=int)
    for arg in ("--model", "--world", "--traces", "--ptq", "--out", "--metrics", "--plots", "--ckpt", "--per-problem"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = run_qat_grid(params(a, QuantParams), a.reasoner, a.bits, a.model, a.world, a.traces, a.ptq, a.out, a.plots,
                     ckpt_root=a.ckpt, per_problem_path=a.per_problem)
    finish(a.metrics, m, {name: round(r["avg_at_k"], 4) for name, r in m["runs"].items()})


if __name__ == "__main__":
    main()
