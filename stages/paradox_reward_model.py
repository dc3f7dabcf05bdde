"""DVC stage `paradox_reward_model`: the Bradley-Terry reward model on a pool of configured composition."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import train_reward
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--samples", required=True, help="parent of the paradox_sample outputs (<samples>/<family>/)")
    ap.add_argument("--out", required=True, help="the reward model (models/reward_model) and its pool.json")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--live", required=True, help="dvclive directory of the loss curve")
    a = ap.parse_args()
    m = train_reward(load_params(a.params), a.world, a.samples, a.out, live_dir=a.live)
    write_json(a.metrics, m)
    print({k: v for k, v in m.items() if k != "pool"}, m.get("pool", {}).get("realised"))


if __name__ == "__main__":
    main()
