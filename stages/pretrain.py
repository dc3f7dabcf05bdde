"""DVC stage `pretrain@<model>`: base-train one model of the zoo (paper profile: fetch its hub checkpoint)."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.models.pretrain import pretrain


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("model")
    for arg in ("--world", "--out", "--metrics", "--live", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = pretrain(params(a), a.model, a.world, a.out, ckpt_root=a.ckpt, live_dir=a.live)
    finish(a.metrics, m, {k: v for k, v in m.items() if k != "dialect_mix"})


if __name__ == "__main__":
    main()
