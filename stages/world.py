"""DVC stage `world`: generate the tiny world (or, in the paper profile, load hub data sets)."""

import argparse
from pathlib import Path

from reasonlab.io import fresh_tmp_dir, replace_dir, write_json
from reasonlab.params import load_params
from reasonlab.world.build import build_world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/world")
    a = ap.parse_args()
    p = load_params(a.params)
    if p.world.hub:
        from reasonlab.hub import build_world_from_hub

        build = lambda out: build_world_from_hub(p.world.hub, p.seed, out)  # noqa: E731
    else:
        build = lambda out: build_world(p.world, p.seed, out)  # noqa: E731
    out = Path(a.out)
    tmp = fresh_tmp_dir(out)
    summary = build(tmp)
    write_json(tmp / "params.json", {"seed": p.seed, "world": p.world.model_dump(), "summary": summary})
    replace_dir(tmp, out)
    print(summary)


if __name__ == "__main__":
    main()
