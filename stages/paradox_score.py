"""DVC stage `paradox_score@<family>`: RM score, step validity, perplexity (Q1-Q4) and token shift per set."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import score_family
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("family")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True, help="the family's base model directory")
    ap.add_argument("--reward", required=True, help="the reward model directory")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--samples", required=True, help="the family's paradox_sample output (its own samples)")
    ap.add_argument("--variants", required=True, help="the family's paradox_variants output")
    ap.add_argument("--out", required=True, help="directory of analysis.json and scores.csv")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    m = score_family(load_params(a.params), a.family, a.model, a.reward, a.world, a.samples, a.variants, a.out)
    write_json(a.metrics, m)
    print({s: {k: round(v, 3) for k, v in d.items() if k in ("rm_score", "step_validity", "ppl")}
           for s, d in m["sets"].items()})


if __name__ == "__main__":
    main()
