"""How often a family's right answers come from wrong derivations, against chance (a study, not a stage).

``paradox_sample`` keeps a sampled trace when its final answer is right (the paper's rejection sampling). In the tiny
world answers are small integers, so a derivation with wrong steps can land on the right answer. Per problem length
this script counts, over every kept sample (``rft.json``'s ``samples``): the share that are fully valid; among the
samples that are not, the share whose answer is right anyway; and a permutation baseline for that share, each such
sample's answer compared with the gold answer of a randomly drawn sample's problem of the same length (what a
derivation that ignores the problem would hit). The SLM-RFT set of a length where right answers come mostly from
wrong derivations is made of those derivations.

    python benchmarks/rft_chance.py --world data/world --samples data/paradox/samples/llama \\
        --out benchmarks/rft_chance/llama.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.roles import role_items
from reasonlab.params import parse_params
from reasonlab.profiles import compose
from reasonlab.world.tasks import open_task

ROOT = Path(__file__).resolve().parents[1]


def chance_table(items, samples: dict[str, list[dict]], seed: int = 0) -> dict:
    """Per problem length (steps): ``samples`` kept, ``solvable`` problems (a right answer among their kept samples),
    ``fully_valid`` share, ``right_if_invalid`` (share of the invalid samples whose answer is right) and its baseline
    ``chance`` (their answers against the gold of a random same-length sample's problem)."""
    rows = defaultdict(list)  # steps -> (pid, answer, correct, all_valid, gold)
    for pid, ss in samples.items():
        it = items[pid]
        for s in ss:
            if s.get("reason") is not None:  # filtered before the answer was looked at
                continue
            v = it.check(s["text"])
            rows[it.problem.steps].append((pid, v.answer, v.correct, v.all_valid, it.problem.answer))
    rng = np.random.default_rng(seed)
    out = {}
    for k in sorted(rows):
        r = rows[k]
        golds = [x[4] for x in r]
        perm = rng.permutation(len(r))
        invalid = [i for i, x in enumerate(r) if not x[3]]
        by_pid = defaultdict(bool)
        for x in r:
            by_pid[x[0]] |= x[2]
        out[str(k)] = {
            "samples": len(r),
            "problems": len(by_pid),
            "solvable": int(sum(by_pid.values())),
            "fully_valid": round(float(np.mean([x[3] for x in r])), 4),
            "invalid": len(invalid),
            "right_if_invalid": round(float(np.mean([r[i][2] for i in invalid])), 4) if invalid else None,
            "chance": round(float(np.mean([r[i][1] == golds[perm[i]] for i in invalid])), 4) if invalid else None,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--samples", required=True, help="a paradox_sample output folder (its rft.json)")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--set", action="append", default=[], help="a params override, e.g. seed=1")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    P = parse_params(compose(a.profile, ROOT / "conf", a.set), "rft_chance", ParadoxParams)
    task = open_task(a.world)
    items = {it.pid: it for it in role_items(task, "rft", P.paradox.problems.rft, P.paradox.problems.seed)}
    rec = {"samples": a.samples, "overrides": a.set,
           "by_steps": chance_table(items, json.loads((Path(a.samples) / "rft.json").read_text())["samples"], P.seed)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    for k, v in rec["by_steps"].items():
        print(k, json.dumps(v))


if __name__ == "__main__":
    main()
