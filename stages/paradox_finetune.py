"""DVC stage `paradox_finetune@<family>`: every student (set x objective x seed) trained and evaluated (Avg@k)."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.finetune import finetune_family


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("family")
    for arg in ("--model", "--world", "--variants", "--out", "--metrics", "--plots", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = finetune_family(params(a, ParadoxParams), a.family, a.model, a.world, a.variants, a.out, a.plots,
                        ckpt_root=a.ckpt)
    finish(a.metrics, m, {s: {o: round(d["avg"], 4) for o, d in objs.items()} for s, objs in m["sets"].items()})


if __name__ == "__main__":
    main()
