"""DVC stage `quant_w2@<reasoner>`: low-bit recovery at `quant.two_bit.bits` (2 by default: PTQ's kept share, QAT's
recovered fraction, paired over problems and seeds) from the `quant_qat@<reasoner>-<bits>` results, and the shipped
checkpoint's size and stock-transformers greedy parity in a fresh process."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.quant.config import QuantParams
from reasonlab.quant.drivers.two_bit import run_two_bit


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("reasoner")
    paths = ("--model", "--world", "--qat-metrics", "--per-problem", "--ptq-metrics", "--qat", "--data", "--metrics")
    for arg in paths:
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = run_two_bit(params(a, QuantParams), a.reasoner, a.model, a.world, a.qat_metrics, a.per_problem,
                    a.ptq_metrics, a.qat, a.data)
    rec = m["recovered"]
    finish(a.metrics, m, {"ptq_kept": round(m["ptq_kept"].get("mean", float("nan")), 3),
                          "recovered": round(rec["mean"], 3) if rec.get("defined") else "undefined",
                          "parity": m["checkpoint"]["parity"]["all_identical"]})


if __name__ == "__main__":
    main()
