"""DVC stage `paradox_oracle_modes`: fine-tune the base oracle on its synth / refine / style prompts."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.oracle_modes import train_oracle_modes


def main() -> None:
    ap = stage_parser(__doc__)
    for arg in ("--oracle", "--world", "--out", "--metrics", "--live", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = train_oracle_modes(params(a, ParadoxParams), a.oracle, a.world, a.out, live_dir=a.live, ckpt_root=a.ckpt)
    finish(a.metrics, m)


if __name__ == "__main__":
    main()
