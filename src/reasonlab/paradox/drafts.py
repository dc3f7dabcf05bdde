"""Small-model-like drafts of a world problem, with one realistic mistake or none.

The oracle learns its refine / style modes from such drafts, and the reward model's pool takes
its corrupted solutions from them. Mistakes (:data:`~reasonlab.paradox.config.MISTAKE_KINDS`):
an arithmetic slip whose wrong value propagates, a wrong operand or constant (also propagated), a
skipped step, a cut-off before the answer; or a ``correct`` draft. Tiny world only: a draft is
rendered from the problem's computation graph in one of the dialects, its steps in that dialect's
order habit (:data:`~reasonlab.world.dialects.DIALECT_HABIT`), like a correct solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from ..world.dialects import DIALECT_HABIT, DIALECTS, SMALL_DIALECTS, render_solution, render_steps
from ..world.problems import Problem, Quantity, habit_order
from ..world.verifier import apply_op
from .config import DRAFT_KINDS, MISTAKE_KINDS

DEFAULT_KIND_WEIGHTS = {"correct": 0.2, "arithmetic": 0.25, "operand": 0.25, "skip": 0.15, "cutoff": 0.15}
SLIPS = (-10, -3, -2, -1, 1, 2, 3, 10)  # arithmetic slips: off by one..three, a carry error

Step = tuple[Quantity, int, str, int, int]  # (quantity, a, op, b, result) as written


@dataclass(frozen=True)
class Draft:
    """A small-model-like draft solution. ``kind`` is a mistake kind or ``correct``; ``step`` the
    (1-based) position of the step the mistake is in (0 for a correct draft)."""

    text: str
    dialect: str
    kind: str
    step: int = 0


def tokenizer_max_number(tok) -> int:
    """Largest ``n`` such that every integer ``0..n`` is a single token of ``tok``."""
    vocab = tok.get_vocab()
    n = -1
    while str(n + 1) in vocab:
        n += 1
    if n < 0:
        raise ValueError("tok: has no number tokens")
    return n


def _propagate(problem: Problem, order: list[Quantity], at: int,
               first: Callable[[dict[str, int]], tuple[int, str, int, int]]) -> list[Step]:
    """Steps in ``order`` computed on the draft's own (possibly wrong) values; step ``at`` (0-based) comes from
    ``first``."""
    vals = {q.name: q.value for q in problem.given}
    steps: list[Step] = []
    for i, q in enumerate(order):
        if i == at:
            a, op, b, r = first(vals)
        else:
            a, op, b = q.operands(vals)
            r = apply_op(a, op, b)
        vals[q.name] = r
        steps.append((q, a, op, b, r))
    return steps


def _in_range(steps: list[Step], max_value: int) -> bool:
    return all(0 <= x <= max_value for _, a, _, b, r in steps for x in (a, b, r))


def _operand_options(problem: Problem, q: Quantity, vals: dict[str, int], const_range: tuple[int, int]):
    """Wrong-operand variants ``(a, op, b)`` of quantity ``q``: another quantity's value or a wrong constant."""
    a, op, b = q.operands(vals)
    earlier = [x.name for x in problem.quantities[: problem.quantities.index(q)]]
    out = []
    if q.op == "together":
        for other in earlier:
            if other not in q.args and vals[other] != b:
                out.append((a, op, vals[other]))
            if other not in q.args and vals[other] != a:
                out.append((vals[other], op, b))
    else:
        for other in earlier:
            if other != q.args[0] and vals[other] != a:
                out.append((vals[other], op, b))
        if q.op == "times":
            out.append((a, op, 5 - b))  # twice <-> three times
        else:
            lo, hi = const_range
            out += [(a, op, c) for c in range(lo, hi + 1) if c != b]
    return out


def make_draft(problem: Problem, dialect: str, kind: str, rng: np.random.Generator, max_value: int,
               const_range: tuple[int, int] = (1, 9), attempts: int = 20) -> Draft | None:
    """A draft of ``problem`` in ``dialect`` with one mistake of ``kind`` (or ``correct``).

    The mistake's consequences propagate: later steps compute correctly from the wrong values. All
    numbers stay in ``[0, max_value]`` (so they are tokens of the world's vocabulary); ``None`` when
    ``kind`` cannot be realised within that range for this problem.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: unknown {dialect!r}; known {sorted(DIALECTS)}")
    if kind not in DRAFT_KINDS:
        raise ValueError(f"kind must be one of {DRAFT_KINDS}, got {kind!r}")
    n = problem.steps
    order = habit_order(problem, DIALECT_HABIT[dialect])
    if kind == "correct":
        return Draft(render_solution(problem, dialect), dialect, kind, 0)
    if kind == "skip":
        at = int(rng.integers(n - 1)) if n > 1 else 0  # an intermediate step (the only one for 1 step)
        steps = _propagate(problem, order, -1, lambda v: (0, "+", 0, 0))
        kept = [s for i, s in enumerate(steps) if i != at]
        return Draft(render_steps(problem, dialect, kept, problem.answer), dialect, kind, at + 1)
    if kind == "cutoff":
        steps = _propagate(problem, order, -1, lambda v: (0, "+", 0, 0))
        j = int(rng.integers(n + 1))  # complete steps before the cut (n: cut just before the answer)
        text = render_steps(problem, dialect, steps[:j], None)
        d = DIALECTS[dialect]
        nxt = d.render_step(j + 1, problem, *steps[j]) if j < n else d.render_answer(problem.answer)
        words = nxt.split()[:-1] if nxt.split()[-1] in (".", ";") else nxt.split()
        if len(words) > 1 and (j == 0 or rng.random() < 0.5):  # often cut mid-sentence
            text = (text + " " + " ".join(words[: int(rng.integers(1, len(words)))])).strip()
        if not text:  # pragma: no cover - j == 0 always takes a fragment
            return None
        return Draft(text, dialect, kind, j + 1)
    for _ in range(attempts):
        at = int(rng.integers(n))
        q = order[at]
        if kind == "arithmetic":
            slip = int(rng.choice(SLIPS))

            def first(vals, q=q, slip=slip):
                a, op, b = q.operands(vals)
                return a, op, b, apply_op(a, op, b) + slip
        else:  # operand
            vals0 = {x.name: x.value for x in problem.quantities}
            opts = _operand_options(problem, q, vals0, const_range)
            if not opts:
                continue
            a1, op1, b1 = opts[int(rng.integers(len(opts)))]

            def first(vals, a1=a1, op1=op1, b1=b1):
                return a1, op1, b1, apply_op(a1, op1, b1)
        steps = _propagate(problem, order, at, first)
        if _in_range(steps, max_value):
            return Draft(render_steps(problem, dialect, steps, steps[-1][4]), dialect, kind, at + 1)
    return None


def sample_draft(problem: Problem, rng: np.random.Generator, kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                 dialects: Sequence[str] = SMALL_DIALECTS, *, max_value: int,
                 const_range: tuple[int, int] = (1, 9)) -> Draft:
    """A draft with a dialect drawn uniformly from ``dialects`` and a kind drawn by ``kind_weights``.

    A kind that cannot be realised for the problem falls back to another mistake kind (``skip`` always can).
    """
    bad = set(kind_weights) - set(DRAFT_KINDS)
    if bad:
        raise ValueError(f"kind_weights: unknown kinds {sorted(bad)}; known {DRAFT_KINDS}")
    kinds = [k for k in DRAFT_KINDS if kind_weights.get(k, 0) > 0]
    if not kinds or any(w < 0 for w in kind_weights.values()):
        raise ValueError(f"kind_weights: need non-negative weights with a positive sum, got {dict(kind_weights)}")
    if not dialects:
        raise ValueError("dialects: empty")
    w = np.array([kind_weights[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    dialect = dialects[int(rng.integers(len(dialects)))]
    for k in (kind, "skip"):
        d = make_draft(problem, dialect, k, rng, max_value, const_range)
        if d is not None:
            return d
    raise AssertionError("unreachable: a skip draft always exists")  # pragma: no cover


__all__ = ["DEFAULT_KIND_WEIGHTS", "DRAFT_KINDS", "Draft", "MISTAKE_KINDS", "SLIPS", "Step", "make_draft",
           "sample_draft", "tokenizer_max_number"]
