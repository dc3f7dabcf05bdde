"""DVC stage `paradox_reward_model`: the Bradley-Terry reward model on a pool of configured composition."""

from reasonlab.cli import finish, params, stage_parser
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.reward_model import train_reward


def main() -> None:
    ap = stage_parser(__doc__)
    ap.add_argument("--samples", required=True, help="parent of the paradox_sample outputs (<samples>/<family>/)")
    for arg in ("--world", "--out", "--metrics", "--live", "--ckpt"):
        ap.add_argument(arg, required=True)
    a = ap.parse_args()
    m = train_reward(params(a, ParadoxParams), a.world, a.samples, a.out, live_dir=a.live, ckpt_root=a.ckpt)
    finish(a.metrics, m, {k: v for k, v in m.items() if k not in ("pool", "heldout_pool")})


if __name__ == "__main__":
    main()
