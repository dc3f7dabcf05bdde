"""DVC stage `quant_calib@<reasoner>`: calibration-domain alignment (RQ4): PTQ calibrated on each domain, QAT from each."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.quant.config import QuantParams
from reasonlab.quant.drivers.calib import run_calib_align


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("reasoner")
    for arg in ("--model", "--world", "--traces", "--out", "--metrics", "--plots", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = run_calib_align(params(a, QuantParams), a.reasoner, a.model, a.world, a.traces, a.out, a.plots,
                        ckpt_root=a.ckpt)
    q = m["qat"]
    finish(a.metrics, m, {d: {"steps_to_target": r["steps_to_target"], "final": round(r["final_avg_at_k"], 4)}
                          for d, r in q["domains"].items()})


if __name__ == "__main__":
    main()
