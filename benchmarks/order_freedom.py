"""How often a refined trace *can* differ from the oracle's synthesis: the world's freedom of step order (a study).

Issue 23 expects Oracle-Refined to differ from Oracle-Synthesized on a clear majority of ids
(``refined_differs_share`` in ``metrics/paradox/variants/<family>.json``). Where both modes verify, both traces are
correct derivations in the oracle's dialect, whose wording is fixed by the step up to operand order (below); refine
keeps the draft's step order, synthesize uses the oracle's habit (:data:`reasonlab.world.dialects.DIALECT_HABIT`).
So their steps can come in another order only where the problem has more than one valid step order and the
family's order is not the oracle's. This script
counts, on a split of the world and by problem length, the share of problems with more than one valid order and, per
family, the share where the family's habit order differs from the oracle's: the ceiling of ``refined_differs_share``
on problems of that length when the drafts follow their family's habit. No model is involved.

The verifier also accepts the operands of a sum or a product in either order (``7 + 16`` for ``16 + 7``), which every
dialect writes in the quantity's own order; a draft that swaps them is kept so by refine. With ``--modes DIR`` (a
trained modes model) the script also runs synthesize and refine on held-out problems with fresh drafts, as the
stage's held-out evaluation does (``paradox.oracle_run``: greedy, then sampled retries), and sorts each pair that
both verified: ``same``, ``step order`` (the steps come in another order), ``operand order`` (same steps, some
operands swapped) or ``other``, by problem length.

    python benchmarks/order_freedom.py --world data/world --split heldout --out benchmarks/order_freedom/heldout.json
    python benchmarks/order_freedom.py --modes models/oracle_modes --n 300 --out benchmarks/order_freedom/modes.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from reasonlab.world.build import load_problems
from reasonlab.world.dialects import DIALECT_HABIT, DIALECTS
from reasonlab.world.problems import Problem, habit_order, valid_orders
from reasonlab.world.verifier import verify

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


def _steps(problem: Problem, text: str, commute: bool) -> list[tuple]:
    """``(name, a, op, b, result)`` of each step of ``text`` (operands of ``+`` / ``*`` sorted with ``commute``)."""
    out = []
    for st in verify(problem, text).steps:
        g = DIALECTS[st.dialect].step_re.match(st.text).groupdict() if st.dialect else {}
        a, b = (int(g["a"]), int(g["b"])) if g else (None, None)
        if commute and g and g["op"] in "+*":
            a, b = sorted((a, b))
        out.append((st.name, a, g.get("op"), b, g.get("r")))
    return out


def difference(problem: Problem, synth: str, refine: str) -> str:
    """How two solutions of ``problem`` differ: ``same``, ``step order``, ``operand order`` or ``other``."""
    if synth == refine:
        return "same"
    s, r = _steps(problem, synth, False), _steps(problem, refine, False)
    if [x[0] for x in s] != [x[0] for x in r]:
        return "step order"
    if s != r and _steps(problem, synth, True) == _steps(problem, refine, True):
        return "operand order"
    return "other"


def modes_differences(model_dir: str, world: str, n: int, profile: str = "tiny") -> dict:
    """Synthesize and refine on ``n`` held-out problems with fresh drafts; the pairs that both verified, sorted by
    :func:`difference` per problem length, with one example of each kind."""
    from reasonlab.models.zoo import load_lm
    from reasonlab.paradox.config import ParadoxParams
    from reasonlab.paradox.drivers.oracle_modes import held_out_drafts
    from reasonlab.paradox.oracle import model_proposer, oracle_run
    from reasonlab.paradox.roles import role_items
    from reasonlab.params import parse_params
    from reasonlab.profiles import compose
    from reasonlab.world.tasks import open_task

    P = parse_params(compose(profile, ROOT / "conf", []), "order_freedom", ParadoxParams)
    n_train = P.paradox.problems.oracle_modes
    items = role_items(open_task(world), "oracle_modes", n_train + n, P.paradox.problems.seed)[n_train:]
    model, tok = load_lm(model_dir)
    drafts = [d.text for d in held_out_drafts(P, items, tok)]
    rc = P.paradox.oracle_run
    prop = model_proposer(model, tok, seed=P.seed, temperature=rc.temperature, retry_temperature=rc.retry_temperature,
                          top_p=rc.top_p, max_new_tokens=rc.max_new_tokens, batch_size=rc.batch_size)
    res = {m: oracle_run(prop, m, items, None if m == "synth" else drafts, max_retries=rc.max_retries)
           for m in ("synth", "refine")}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    examples: dict[str, dict] = {}
    for it, d in zip(items, drafts):
        s, r = res["synth"].outputs.get(it.pid), res["refine"].outputs.get(it.pid)
        if s is None or r is None:
            continue
        kind = difference(it.problem, s, r)
        for k in (str(it.problem.steps), "all"):
            counts[k][kind] += 1
        examples.setdefault(kind, {"pid": it.pid, "draft": d, "synth": s, "refine": r})
    return {"model": model_dir, "n": n, "max_retries": rc.max_retries,
            "pass_rate": {m: r.stats["pass_rate"] for m, r in res.items()},
            "both_verified": {k: dict(v) for k, v in sorted(counts.items(), key=lambda kv: (kv[0] == "all", kv[0]))},
            "examples": examples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--split", default="heldout", help="a split of the world (never a test tier needed)")
    ap.add_argument("--modes", default=None, help="a trained modes model: also sort its synth/refine differences")
    ap.add_argument("--n", type=int, default=300, help="with --modes: held-out problems")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rec = {"world": a.world, "split": a.split, "by_steps": order_freedom(load_problems(a.world, a.split))}
    if a.modes:
        from reasonlab.io import setup_threads

        setup_threads()
        rec["modes"] = modes_differences(a.modes, a.world, a.n)
        print(json.dumps(rec["modes"]["both_verified"]))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    for k, v in rec["by_steps"].items():
        print(k, json.dumps({c: round(x, 3) if isinstance(x, float) else x for c, x in v.items()}))


if __name__ == "__main__":
    main()
