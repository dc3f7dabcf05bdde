"""DVC stage `paradox_variants@<family>`: the five training sets on identical problem ids."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import make_variants
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("family")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--oracle", required=True, help="the oracle with its modes (models/oracle_modes)")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--samples", required=True, help="the family's paradox_sample output")
    ap.add_argument("--out", required=True, help="directory of the five sets (datasets) and report.json")
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    m = make_variants(load_params(a.params), a.family, a.oracle, a.world, a.samples, a.out)
    write_json(a.metrics, m)
    print({k: m[k] for k in ("n_solvable", "n_ids", "dropped_by_mode")})


if __name__ == "__main__":
    main()
