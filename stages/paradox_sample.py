"""DVC stage `paradox_sample@<family>`: rejection sampling (SLM-RFT) of one small-model family."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import sample_family
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("family")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True, help="the family's base model directory")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--out", required=True, help="directory of rft.json (and reward.json)")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    m = sample_family(load_params(a.params), a.family, a.model, a.world, a.out)
    write_json(a.metrics, m)
    print({k: m["rft"][k] for k in ("n_problems", "solvable", "pass_rate", "wall_s")})


if __name__ == "__main__":
    main()
