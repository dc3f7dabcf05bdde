"""How often a refined trace *can* differ from the oracle's synthesis: the world's freedom of step order (a study).

Issue 23 expects Oracle-Refined to differ from Oracle-Synthesized on a clear majority of ids
(``refined_differs_share`` in ``metrics/paradox/variants/<family>.json``). Where both modes verify, both traces are
correct derivations in the oracle's dialect, whose wording is fixed by the step; refine keeps the draft's step
order, synthesize uses the oracle's habit (:data:`reasonlab.world.dialects.DIALECT_HABIT`). So the two can differ
only where the problem has more than one valid step order and the family's order is not the oracle's. This script
counts, on a split of the world and by problem length, the share of problems with more than one valid order and, per
family, the share where the family's habit order differs from the oracle's: the ceiling of ``refined_differs_share``
on problems of that length when the drafts follow their family's habit. No model is involved.

    python benchmarks/order_freedom.py --world data/world --split heldout --out benchmarks/order_freedom.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from reasonlab.world.build import load_problems
from reasonlab.world.dialects import DIALECT_HABIT
from reasonlab.world.problems import Problem, habit_order, valid_orders

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("qwen", "llama", "deepseek")


def habit_differs(problem: Problem, family: str, reference: str = "oracle") -> bool:
    """Whether ``family``'s habit orders the steps of ``problem`` differently from ``reference``'s habit."""
    names = [q.name for q in habit_order(problem, DIALECT_HABIT[family])]
    return names != [q.name for q in habit_order(problem, DIALECT_HABIT[reference])]


def order_freedom(problems: list[Problem], families=FAMILIES) -> dict:
    """Per problem length (number of steps) and overall: ``n``, ``several_orders`` (share with more than one valid
    step order) and, per family, the share where its habit order differs from the oracle's."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for p in problems:
        row = {"several_orders": len(valid_orders(p, limit=2)) > 1, **{f: habit_differs(p, f) for f in families}}
        rows[str(p.steps)].append(row)
        rows["all"].append(row)
    keys = ("several_orders", *families)
    return {k: {"n": len(r), **{c: sum(x[c] for x in r) / len(r) for c in keys}}
            for k, r in sorted(rows.items(), key=lambda kv: (kv[0] == "all", kv[0]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--split", default="heldout", help="a split of the world (never a test tier needed)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rec = {"world": a.world, "split": a.split, "by_steps": order_freedom(load_problems(a.world, a.split))}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    for k, v in rec["by_steps"].items():
        print(k, json.dumps({c: round(x, 3) if isinstance(x, float) else x for c, x in v.items()}))


if __name__ == "__main__":
    main()
