"""DVC stage `adaptation_cost@<family>`: the sets' adaptation cost (perplexity by quarter, loss attribution) and the
causal drift sweep (students on the same derivations rendered at each level of drift)."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.adaptation import adaptation_family


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("family")
    for arg in ("--model", "--world", "--variants", "--score", "--out", "--metrics", "--plots", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = adaptation_family(params(a, ParadoxParams), a.family, a.model, a.world, a.variants, a.score, a.out, a.plots,
                          ckpt_root=a.ckpt)
    finish(a.metrics, m, {"drift_utility_spearman": m.get("drift_utility_spearman"), "ppl": m.get("drift_ppl")})


if __name__ == "__main__":
    main()
