"""DVC stage `world`: generate the tiny world (or, in the paper profile, load the hub data sets)."""

from pathlib import Path

from reasonlab.cli import params, stage_parser
from reasonlab.io import fresh_tmp_dir, replace_dir, write_json
from reasonlab.world.build import make_world


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    P = params(a)
    tmp = fresh_tmp_dir(a.out)
    summary = make_world(P.world, P.seed, tmp)
    write_json(tmp / "params.json", {"seed": P.seed, "world": P.world.model_dump(), "summary": summary})
    replace_dir(tmp, Path(a.out))
    print(summary)


if __name__ == "__main__":
    main()
