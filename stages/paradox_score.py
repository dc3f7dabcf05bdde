"""DVC stage `paradox_score@<family>`: RM score, step validity, perplexity (Q1-Q4) and token shift per set."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.score import score_family


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("family")
    for arg in ("--model", "--reward", "--world", "--samples", "--variants", "--out", "--metrics"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = score_family(params(a, ParadoxParams), a.family, a.model, a.reward, a.world, a.samples, a.variants, a.out)
    finish(a.metrics, m, {s: {k: round(v, 3) for k, v in d.items() if k in ("rm_score", "step_validity", "ppl")}
                          for s, d in m["sets"].items()})


if __name__ == "__main__":
    main()
