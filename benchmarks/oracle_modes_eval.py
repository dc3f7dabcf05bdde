"""How often the oracle's modes verify on held-out drafts, for any trained modes model (a study, not a stage).

The stage ``paradox_oracle_modes`` reports each mode's pass rate on ``paradox.oracle_modes.eval_problems`` held-out
problems; this script measures the same thing (:func:`~reasonlab.paradox.drivers.oracle_modes.held_out_modes`: the
same problems, drafts and prompting) on more problems and with any number of sampled retries, without retraining,
so that the oracle's recipe can be chosen by its measured pass rates (issue: modes that verify >= 80%).

    python benchmarks/oracle_modes_eval.py --model models/oracle_modes --n 200 --retries 0 2 8 \\
        --out benchmarks/oracle_modes/oracle_modes_h160.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reasonlab.io import setup_threads
from reasonlab.models.zoo import load_lm
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.drivers.oracle_modes import held_out_modes
from reasonlab.paradox.roles import role_items
from reasonlab.params import parse_params
from reasonlab.profiles import compose
from reasonlab.world.tasks import open_task

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained modes model (models/oracle_modes or a study's copy)")
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--set", action="append", default=[], help="a params override, e.g. paradox.oracle_run.top_p=0.9")
    ap.add_argument("--n", type=int, default=200, help="held-out problems (the stage's first eval_problems and more)")
    ap.add_argument("--retries", type=int, nargs="+", default=[0], help="sampled retries after the greedy first try")
    ap.add_argument("--label", default=None, help="what the model is (stored in every record)")
    ap.add_argument("--out", required=True, help="JSON lines: one record per retries setting")
    a = ap.parse_args()
    setup_threads()
    P = parse_params(compose(a.profile, ROOT / "conf", a.set), "oracle_modes_eval", ParadoxParams)
    task = open_task(a.world)
    n_train = P.paradox.problems.oracle_modes
    items = role_items(task, "oracle_modes", n_train + a.n, P.paradox.problems.seed)[n_train:]
    model, tok = load_lm(a.model)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for r in a.retries:
        t0 = time.perf_counter()
        modes = held_out_modes(P, model, tok, items, max_retries=r)
        rec = {"model": a.model, "label": a.label, "overrides": a.set, "n": a.n, "max_retries": r,
               "wall_s": round(time.perf_counter() - t0, 1), "modes": modes}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps({"max_retries": r, **{m: (round(v["pass_rate"], 3), round(v["retried_pass_rate"], 3))
                                                for m, v in modes.items()}}), flush=True)


if __name__ == "__main__":
    main()
