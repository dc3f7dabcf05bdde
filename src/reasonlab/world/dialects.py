"""Dialects: different surface forms of the same step-by-step solution.

Every dialect writes one sentence per derived quantity and a final answer
sentence. They differ in wording, word order, compactness and punctuation,
which is what a small model's "style" is in this world. Every dialect names the quantity a step computes before
its arithmetic (world v3: written the other way round, llama's and deepseek's sampled traces at T = 1 bound far
fewer steps to the right quantity at the same budget; ``benchmarks/README.md``, "World v3"):

* ``qwen``      loose natural language   ``ann has 7 + 5 = 12 pens .``
* ``llama``     conversational           ``for ann we know 7 + 5 is 12 , so ann has 12 pens .``
* ``deepseek``  numbered steps           ``step 1 , ann : 7 + 5 = 12 .``
* ``oracle``    compact, symbolic        ``ann = 7 + 5 = 12 ;``
* ``reference`` textbook, restates why   ``since ann has 5 more pens than ben , ann has 7 + 5 = 12 pens .``

Each dialect has a parser (a regular expression per sentence kind) in
:mod:`reasonlab.world.verifier`; rendering and parsing live side by side here
so a new dialect is one entry in :data:`DIALECTS`.

Each dialect also has an order habit (:data:`DIALECT_HABIT`): the valid step order its
solutions follow when a problem has several (a family acquires it in pretraining because its
training texts are rendered with it). :func:`render_drift` mixes two dialects' step formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .problems import Problem, Quantity, _rng, derived_in_order

NUM = r"(?P<{}>\d+)"
OPRE = r"(?P<op>[-+*])"


@dataclass(frozen=True)
class Dialect:
    name: str
    step: str  # format string with {i} {name} {a} {op} {b} {r} {item} {relation}
    answer: str  # format string with {r}
    step_re: re.Pattern
    answer_re: re.Pattern
    terminator: str = "."

    def render_step(self, i: int, problem: Problem, q: Quantity, a: int, op: str, b: int, r: int) -> str:
        relation = problem.statement(q)[: -len(" .")]
        return self.step.format(i=i, name=q.name, a=a, op=op, b=b, r=r, item=problem.item, relation=relation)

    def render_answer(self, r: int) -> str:
        return self.answer.format(r=r)


def _re(s: str) -> re.Pattern:
    return re.compile("^" + s + "$")


_A, _B, _R = NUM.format("a"), NUM.format("b"), NUM.format("r")

DIALECTS: dict[str, Dialect] = {
    "qwen": Dialect(
        "qwen",
        "{name} has {a} {op} {b} = {r} {item} .",
        "the answer is {r} .",
        _re(rf"(?P<name>[a-z]+) has {_A} {OPRE} {_B} = {_R} (?P<item>[a-z]+)"),
        _re(r"the answer is (?P<r>\d+)"),
    ),
    "llama": Dialect(
        "llama",
        "for {name} we know {a} {op} {b} is {r} , so {name} has {r} {item} .",
        "so the answer is {r} .",
        _re(rf"for (?P<name>[a-z]+) we know {_A} {OPRE} {_B} is {_R} , so (?P<name2>[a-z]+) has (?P<r2>\d+) "
            r"(?P<item>[a-z]+)"),
        _re(r"so the answer is (?P<r>\d+)"),
    ),
    "deepseek": Dialect(
        "deepseek",
        "step {i} , {name} : {a} {op} {b} = {r} .",
        "final answer : {r} .",
        _re(rf"step (?P<i>\d+) , (?P<name>[a-z]+) : {_A} {OPRE} {_B} = {_R}"),
        _re(r"final answer : (?P<r>\d+)"),
    ),
    "oracle": Dialect(
        "oracle",
        "{name} = {a} {op} {b} = {r} ;",
        "#### {r}",
        _re(rf"(?P<name>[a-z]+) = {_A} {OPRE} {_B} = {_R}"),
        _re(r"#### (?P<r>\d+)"),
        terminator=";",
    ),
    "reference": Dialect(
        "reference",
        "since {relation} , {name} has {a} {op} {b} = {r} {item} .",
        "therefore the answer is {r} .",
        _re(rf"since (?P<rel>[a-z0-9 ]+) , (?P<name>[a-z]+) has {_A} {OPRE} {_B} = {_R} (?P<item>[a-z]+)"),
        _re(r"therefore the answer is (?P<r>\d+)"),
    ),
}

SMALL_DIALECTS = ("qwen", "llama", "deepseek")
# Parse order: the most specific pattern first (``reference`` contains a ``qwen`` clause).
PARSE_ORDER = ("reference", "llama", "deepseek", "oracle", "qwen")
DIALECT_HABIT = {"qwen": "left_first", "llama": "by_level", "deepseek": "statement", "oracle": "right_first",
                 "reference": "canonical"}

Step = tuple[Quantity, int, str, int, int]  # (quantity, a, op, b, result) as written
Order = str | Sequence[str] | None  # a habit name, a valid order of names, or None (the dialect's habit)


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (``ValueError`` naming the known ones if none)."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {sorted(DIALECTS)}") from None


def solution_steps(problem: Problem, dialect: str, order: Order = None) -> list[Step]:
    """The correct steps of ``problem`` in ``order`` (default: ``dialect``'s habit)."""
    get_dialect(dialect)
    vals = problem.values
    qs = derived_in_order(problem, DIALECT_HABIT[dialect] if order is None else order)
    return [(q, *q.operands(vals), q.value) for q in qs]


def render_solution(problem: Problem, dialect: str, order: Order = None) -> str:
    """The correct step-by-step solution of ``problem`` written in ``dialect``, its steps in ``order``
    (a habit name, a valid order of names, or ``None``: the dialect's habit)."""
    return render_steps(problem, dialect, solution_steps(problem, dialect, order), problem.answer)


def render_steps(problem: Problem, dialect: str, steps: list[tuple[Quantity, int, str, int, int]], answer: int | None) -> str:
    """Render arbitrary (possibly wrong) steps ``(q, a, op, b, r)`` in ``dialect``; used for drafts with mistakes."""
    d = DIALECTS[dialect]
    parts = [d.render_step(i, problem, q, a, op, b, r) for i, (q, a, op, b, r) in enumerate(steps, start=1)]
    if answer is not None:
        parts.append(d.render_answer(answer))
    return " ".join(parts)


def drifted_steps(problem: Problem, share: float, seed: int) -> set[int]:
    """The 0-based positions of the ``round(share * steps)`` steps that drift (a pure function of ``seed`` and
    the pid)."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    n = problem.steps
    return set(_rng(seed, problem.pid, "drift").sample(range(n), round(share * n)))


def render_drift(problem: Problem, dialect: str, share: float, seed: int, other: str = "oracle",
                 order: Order = None) -> str:
    """The dialect-drift dial: the correct solution in ``dialect`` (steps in ``order``, default its habit) with
    ``round(share * steps)`` of its steps (:func:`drifted_steps`) in ``other``'s step format; the answer
    sentence in ``dialect`` (in ``other`` when ``share == 1``). ``share == 0`` is :func:`render_solution`."""
    drift = drifted_steps(problem, share, seed)
    own, alien = get_dialect(dialect), get_dialect(other)
    steps = solution_steps(problem, dialect, order)
    parts = [(alien if i in drift else own).render_step(i + 1, problem, *s) for i, s in enumerate(steps)]
    parts.append((alien if share == 1 else own).render_answer(problem.answer))
    return " ".join(parts)
