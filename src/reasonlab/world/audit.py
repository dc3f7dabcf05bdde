"""The world's self-check, written by the ``world`` stage to ``metrics/world.json``.

What makes the tiny world able to fail a claim is measured here, on the world that was built:

* ``multi_order_share``  share of the held-out pool's problems (the paradox pool) with 2+ valid step orders;
* ``distractor_share``   share of held-out problems with at least one fact the question does not need;
* ``heldout_pretrain_overlap``, ``validation_test_overlap``  problems shared by content (must be 0);
* ``verifier_valid_accepted``  share of correct solutions, in every dialect and every valid order, that the
  verifier accepts (``all_valid``) and reports in the order they were written (must be 1.0);
* ``verifier_corrupt_flagged``  share of corrupted solutions it rejects (must be 1.0), over four corruptions:
  a wrong value, a wrong operand, a step before its inputs exist, a skipped step (:func:`corruptions`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from .dialects import DIALECTS, render_solution, render_steps, solution_steps
from .problems import Problem, problem_key, valid_orders
from .verifier import apply_op, verify

CORRUPTIONS = ("value", "operand", "order", "skip")


def corruptions(problem: Problem, dialect: str, order: tuple[str, ...], rng: random.Random) -> dict[str, str]:
    """Corrupted versions of the correct solution written in ``order``, by kind (a kind the problem cannot
    show, e.g. ``order`` on a one-step problem, is left out)."""
    steps = solution_steps(problem, dialect, order)
    ans = problem.answer
    out: dict[str, str] = {}
    i = rng.randrange(len(steps))
    q, a, op, b, r = steps[i]
    out["value"] = render_steps(problem, dialect, steps[:i] + [(q, a, op, b, r + 1)] + steps[i + 1:], ans)
    vals = problem.values
    others = [v for n, v in vals.items() if n not in q.args and v not in (a, b)]
    if others:
        a2 = rng.choice(others)
        out["operand"] = render_steps(problem, dialect, steps[:i] + [(q, a2, op, b, apply_op(a2, op, b))] + steps[i + 1:], ans)
    pos = {s[0].name: k for k, s in enumerate(steps)}
    consumers = [(k, pos[arg]) for k, s in enumerate(steps) for arg in s[0].args if arg in pos]
    if consumers:
        k, j = rng.choice(consumers)  # step k uses step j's quantity (j < k): write step k first
        moved = steps[:j] + [steps[k]] + [s for n, s in enumerate(steps[j:], start=j) if n != k]
        out["order"] = render_steps(problem, dialect, moved, ans)
        out["skip"] = render_steps(problem, dialect, [s for n, s in enumerate(steps) if n != j], ans)
    return out


def verifier_audit(problems: list[Problem], seed: int, max_orders: int = 24) -> dict:
    """Verify every problem's solution in every dialect and every valid order (at most ``max_orders`` per
    problem), and the corruptions of one order per dialect; shares and counts by kind."""
    rng = random.Random(seed)
    accepted = total = 0
    flagged: Counter = Counter()
    corrupt: Counter = Counter()
    for p in problems:
        orders = valid_orders(p, limit=max_orders)
        for d in DIALECTS:
            for order in orders:
                v = verify(p, render_solution(p, d, order))
                total += 1
                accepted += bool(v.all_valid and v.correct and tuple(v.order) == tuple(order))
            for kind, text in corruptions(p, d, rng.choice(orders), rng).items():
                corrupt[kind] += 1
                flagged[kind] += not verify(p, text).all_valid
    n_corrupt = sum(corrupt.values())
    return {
        "verifier_valid_accepted": accepted / total if total else 0.0,
        "verifier_valid_checked": total,
        "verifier_corrupt_flagged": sum(flagged.values()) / n_corrupt if n_corrupt else 0.0,
        "verifier_corrupt_checked": n_corrupt,
        "verifier_corrupt_flagged_by_kind": {k: flagged[k] / corrupt[k] for k in CORRUPTIONS if corrupt[k]},
    }


def overlap(a: Iterable[str], b: Iterable[str]) -> int:
    """Problems (content keys) in both ``a`` and ``b``."""
    return len(set(a) & set(b))


def world_metrics(splits: dict[str, list[Problem]], seed: int, audit_problems: int = 200) -> dict:
    """``metrics/world.json`` from the built splits (``train``, ``heldout``, ``validation``, ``test_<tier>``),
    compared by content (:func:`~reasonlab.world.problems.problem_key`)."""
    keys = {s: [problem_key(p) for p in ps] for s, ps in splits.items()}
    tests = [k for s, ks in keys.items() if s.startswith("test_") for k in ks]
    pool = splits["heldout"]
    n_orders = [len(valid_orders(p, limit=2)) for p in pool]
    audit_set = pool[:audit_problems] + [p for s, ps in splits.items() if s.startswith("test_") for p in ps[:20]]
    return {
        "multi_order_share": sum(n >= 2 for n in n_orders) / len(pool),
        "distractor_share": sum(bool(p.distractors) for p in pool) / len(pool),
        "heldout_pretrain_overlap": overlap(keys["heldout"], keys["train"]),
        "validation_test_overlap": overlap(keys["validation"], tests),
        "validation_pretrain_overlap": overlap(keys["validation"], keys["train"]),
        "test_pretrain_overlap": overlap(tests, keys["train"]),
        **verifier_audit(audit_set, seed),
        "verifier_audit_problems": len(audit_set),
    }
