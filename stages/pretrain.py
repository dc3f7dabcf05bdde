"""DVC stage `pretrain@<model>`: base-train one model of the zoo."""

import argparse

from reasonlab.io import write_json
from reasonlab.models.pretrain import pretrain
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--live", required=True)
    a = ap.parse_args()
    stats = pretrain(load_params(a.params), a.model, a.world, a.out, live_dir=a.live)
    write_json(a.metrics, stats)
    print({k: v for k, v in stats.items() if k != "dialect_mix"})


if __name__ == "__main__":
    main()
