"""DVC stage `paradox_oracle_modes`: fine-tune the base oracle on its synth / refine / style prompts."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import train_oracle_modes
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--oracle", required=True, help="base oracle directory (pretrain@oracle)")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--out", required=True, help="the oracle with its modes (models/oracle_modes)")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--live", required=True, help="dvclive directory of the loss curve")
    ap.add_argument("--ckpt", default=".ckpt", help="resumable run state (outside DVC outputs)")
    a = ap.parse_args()
    stats = train_oracle_modes(load_params(a.params), a.oracle, a.world, a.out, live_dir=a.live, ckpt_root=a.ckpt)
    write_json(a.metrics, stats)
    print({k: v for k, v in stats.items() if k != "held_out"}, stats.get("held_out"))


if __name__ == "__main__":
    main()
