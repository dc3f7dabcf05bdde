"""DVC stage `paradox_variants@<family>`: the five training sets on identical problem ids."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.variants import make_variants


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("family")
    for arg in ("--oracle", "--world", "--samples", "--out", "--metrics"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = make_variants(params(a, ParadoxParams), a.family, a.oracle, a.world, a.samples, a.out)
    finish(a.metrics, m, {k: m[k] for k in ("n_solvable", "n_ids", "dropped_by_mode")})


if __name__ == "__main__":
    main()
