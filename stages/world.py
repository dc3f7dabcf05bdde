"""DVC stage `world`: generate the tiny world (or, in the paper profile, load the hub data sets)."""

from pathlib import Path

from reasonlab.cli import finish, params, stage_parser
from reasonlab.io import fresh_tmp_dir, replace_dir, write_json
from reasonlab.world.build import make_world


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", required=True)
    a = ap.parse_args()
    P = params(a)
    tmp = fresh_tmp_dir(a.out)
    summary = make_world(P.world, P.seed, tmp)
    write_json(tmp / "params.json", {"seed": P.seed, "world": P.world.model_dump(), "summary": summary})
    replace_dir(tmp, Path(a.out))
    audit = summary.pop("audit", {})  # the tiny world's self-check (reasonlab.world.audit)
    finish(a.metrics, {**audit, "splits": {k: v for k, v in summary.items() if isinstance(v, int)}}, summary)


if __name__ == "__main__":
    main()
