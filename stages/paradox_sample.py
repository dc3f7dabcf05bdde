"""DVC stage `paradox_sample@<family>`: rejection sampling (SLM-RFT) of one small-model family."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.sample import sample_family


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("family")
    for arg in ("--model", "--world", "--out", "--metrics"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = sample_family(params(a, ParadoxParams), a.family, a.model, a.world, a.out)
    finish(a.metrics, m, {k: m["rft"][k] for k in ("n_problems", "solvable", "pass_rate", "wall_s")})


if __name__ == "__main__":
    main()
