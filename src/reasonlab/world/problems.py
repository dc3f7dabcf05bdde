"""Multi-step word problems over named quantities.

A problem is a small computation graph: *given* quantities and *derived* ones, each derived from
earlier quantities by one of four relations (``more``, ``fewer``, ``times``, ``together``). Every
quantity belongs to a different person and counts the same item, so the text stays in a closed
vocabulary. All values are bounded integers in ``[0, max_value]``.

The target depends on every *needed* derived quantity. A problem is either a chain (one valid
step order) or two independent branches merged by ``together`` and continued by a chain (several
valid orders, :func:`valid_orders`). *Distractors* are facts the target does not depend on. The
statements are written in generation order, in a shuffled order, or in a mildly shuffled one where each statement
moves at most ``k`` places, as iGSM does (:attr:`Problem.order`, :attr:`ProblemSpec.shuffle`).

Generation is a pure function of ``(seed, index, steps, spec, prefix)`` so a problem can be
re-created from its id alone, which is what makes the world deterministic.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

NAMES = (
    "ann ben carl dan eve finn gus hana ivan jade kai lena milo nora owen pia "
    "quinn rosa sam tara uma vic wes zoe"
).split()
ITEMS = "apples pens books cards shells coins stamps marbles beads cups kites leaves".split()
OPS = ("more", "fewer", "times", "together")
TIMES_WORD = {2: "twice", 3: "three times"}
SYMBOL = {"more": "+", "fewer": "-", "times": "*", "together": "+"}
HABITS = ("canonical", "left_first", "right_first", "by_level", "statement")
SHARED_GIVEN = 1 / 3  # chance that the second branch starts from the first branch's given
MAX_GIVENS = 2


@dataclass(frozen=True)
class Quantity:
    """One node of the computation graph.

    ``args`` names the earlier quantities it depends on; ``const`` is the
    literal of the relation (the given value, the added/removed amount or the
    multiplier); ``distractor`` marks a fact the target does not depend on.
    """

    name: str
    op: str  # "given" | one of OPS
    args: tuple[str, ...]
    const: int | None
    value: int
    distractor: bool = False

    def operands(self, values: dict[str, int]) -> tuple[int, str, int]:
        """The arithmetic ``a op b`` that computes this quantity."""
        if self.op == "more":
            return values[self.args[0]], "+", self.const
        if self.op == "fewer":
            return values[self.args[0]], "-", self.const
        if self.op == "times":
            return values[self.args[0]], "*", self.const
        if self.op == "together":
            return values[self.args[0]], "+", values[self.args[1]]
        raise ValueError(f"quantity {self.name!r} is given; it has no operands")


@dataclass(frozen=True)
class Problem:
    """A word problem: its quantities in a topological (generation) order, distractors included,
    and ``order``, the names in the order the text states them (``None``: the quantities' order)."""

    pid: str
    item: str
    quantities: tuple[Quantity, ...]
    seed: int = field(default=0, compare=False)
    order: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.order is not None and sorted(self.order) != sorted(q.name for q in self.quantities):
            raise ValueError(f"order of problem {self.pid!r} must name every quantity once, got {self.order}")

    @property
    def given(self) -> list[Quantity]:
        """The needed givens (distractor givens are in :attr:`distractors`)."""
        return [q for q in self.quantities if q.op == "given" and not q.distractor]

    @property
    def derived(self) -> list[Quantity]:
        """The needed derived quantities in canonical (generation) order; the target is the last."""
        return [q for q in self.quantities if q.op != "given" and not q.distractor]

    @property
    def distractors(self) -> list[Quantity]:
        """Every quantity the target does not depend on (givens and derived)."""
        return [q for q in self.quantities if q.distractor]

    @property
    def steps(self) -> int:
        return len(self.derived)

    @property
    def target(self) -> Quantity:
        return self.derived[-1]

    @property
    def answer(self) -> int:
        return self.target.value

    @property
    def values(self) -> dict[str, int]:
        """Every quantity's value, distractors included."""
        return {q.name: q.value for q in self.quantities}

    @property
    def statement_order(self) -> tuple[str, ...]:
        """The names in the order the text states them."""
        return self.order if self.order is not None else tuple(q.name for q in self.quantities)

    def quantity(self, name: str) -> Quantity:
        """The quantity called ``name`` (``KeyError`` if none)."""
        for q in self.quantities:
            if q.name == name:
                return q
        raise KeyError(f"problem {self.pid!r} has no quantity {name!r}")

    def statement(self, q: Quantity) -> str:
        it = self.item
        if q.op == "given":
            return f"{q.name} has {q.const} {it} ."
        if q.op == "more":
            return f"{q.name} has {q.const} more {it} than {q.args[0]} ."
        if q.op == "fewer":
            return f"{q.name} has {q.const} fewer {it} than {q.args[0]} ."
        if q.op == "times":
            return f"{q.name} has {TIMES_WORD[q.const]} as many {it} as {q.args[0]} ."
        if q.op == "together":
            return f"{q.name} has as many {it} as {q.args[0]} and {q.args[1]} together ."
        raise ValueError(q.op)

    @property
    def text(self) -> str:
        body = " ".join(self.statement(self.quantity(n)) for n in self.statement_order)
        return f"{body} how many {self.item} does {self.target.name} have ?"

    def to_record(self) -> dict:
        return {
            "pid": self.pid,
            "item": self.item,
            "steps": self.steps,
            "answer": self.answer,
            "text": self.text,
            "order": list(self.order) if self.order is not None else None,
            "graph": [
                {"name": q.name, "op": q.op, "args": list(q.args), "const": q.const, "value": q.value,
                 "distractor": q.distractor}
                for q in self.quantities
            ],
        }

    @classmethod
    def from_record(cls, rec: dict) -> "Problem":
        """The problem of a :meth:`to_record` record (older records without ``order``/``distractor`` too)."""
        try:
            qs = tuple(
                Quantity(g["name"], g["op"], tuple(g["args"]), g["const"], int(g["value"]), bool(g.get("distractor")))
                for g in rec["graph"]
            )
            order = rec.get("order")
            return cls(pid=str(rec["pid"]), item=str(rec["item"]), quantities=qs,
                       order=tuple(order) if order is not None else None)
        except (KeyError, TypeError) as e:  # pragma: no cover - message path tested
            raise ValueError(f"malformed problem record (pid={rec.get('pid')!r}): missing {e}") from e


@dataclass(frozen=True)
class ProblemSpec:
    """How problems are generated: value bounds, the share of two-branch problems (of those with
    >= 3 steps), the inclusive range of distractor facts, and the statement order: ``shuffle`` is ``False``
    (generation order), ``True`` (a uniform shuffle) or an int ``k >= 1`` (each statement moves at most ``k`` places
    from its generation position, :func:`window_shuffle`)."""

    max_value: int = 40
    given_range: tuple[int, int] = (2, 20)
    const_range: tuple[int, int] = (1, 9)
    branch_share: float = 0.9
    distractors: tuple[int, int] = (1, 2)
    shuffle: bool | int = True

    def __post_init__(self) -> None:
        if not isinstance(self.shuffle, bool) and (not isinstance(self.shuffle, int) or self.shuffle < 1):
            raise ValueError(f"shuffle must be true, false or a window k >= 1, got {self.shuffle!r}")
        if not 0 <= self.branch_share <= 1:
            raise ValueError(f"branch_share must be in [0, 1], got {self.branch_share!r}")
        lo, hi = self.distractors
        if not 0 <= lo <= hi:
            raise ValueError(f"distractors must be a range 0 <= lo <= hi, got {self.distractors!r}")


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def apply_op(a: int, op: str, b: int) -> int:
    """``a op b`` for the world's operators ``+ - *``."""
    return a + b if op == "+" else a - b if op == "-" else a * b


class _Retry(Exception):
    """A generation attempt left the value bounds; the caller tries the next attempt."""


Choice = tuple[str, tuple[str, ...], int | None]  # (op, args, const)


class _Builder:
    """Adds quantities with fresh names and in-bounds values to a problem under construction."""

    def __init__(self, rng: random.Random, spec: ProblemSpec):
        self.rng, self.spec = rng, spec
        self.names = rng.sample(NAMES, len(NAMES))
        self.qs: list[Quantity] = []
        self.vals: dict[str, int] = {}

    def _add(self, q: Quantity, at: int | None) -> str:
        self.qs.insert(len(self.qs) if at is None else at, q)
        self.vals[q.name] = q.value
        return q.name

    def given(self, distractor: bool = False, at: int | None = None) -> str:
        v = self.rng.randint(*self.spec.given_range)
        return self._add(Quantity(self.names.pop(), "given", (), v, v, distractor), at)

    def derive(self, choices: list[Choice], distractor: bool = False, at: int | None = None) -> str | None:
        """The first of ``choices`` (in random order) whose value is in bounds; ``None`` if none is."""
        self.rng.shuffle(choices)
        for op, args, const in choices:
            q = Quantity(self.names[-1], op, args, const, 0, distractor)
            v = apply_op(*q.operands(self.vals))
            if 0 <= v <= self.spec.max_value:
                self.names.pop()
                return self._add(replace(q, value=v), at)
        return None

    def relations(self, src: str) -> list[Choice]:
        """``more``, ``fewer`` and ``times`` of ``src`` with random constants."""
        lo, hi = self.spec.const_range
        return [("more", (src,), self.rng.randint(lo, hi)), ("fewer", (src,), self.rng.randint(lo, hi)),
                ("times", (src,), self.rng.choice((2, 3)))]

    def step(self, prev: str, partners: Sequence[str]) -> str:
        """A chain step from ``prev``: a relation of it, or ``together`` with one of ``partners``."""
        choices = self.relations(prev)
        if partners:
            choices.append(("together", (prev, self.rng.choice(partners)), None))
        return _must(self.derive(choices))

    def merge(self, a: str, b: str) -> str:
        return _must(self.derive([("together", (a, b), None)]))

    def needed(self) -> list[str]:
        return [q.name for q in self.qs if not q.distractor]


def _must(name: str | None) -> str:
    if name is None:
        raise _Retry
    return name


def _chain(b: _Builder, steps: int) -> None:
    """A pure chain: every step uses the one before (two givens start with their sum)."""
    first = b.given()
    if steps >= 2 and b.rng.random() < 0.5:
        prev, done = b.merge(first, b.given()), 1
    else:
        prev, done = first, 0
    _continue(b, prev, steps - done)


def _continue(b: _Builder, prev: str, steps: int) -> None:
    """``steps`` chain steps after ``prev``; ``together`` may use any earlier needed quantity."""
    for _ in range(steps):
        prev = b.step(prev, [n for n in b.needed() if n != prev])


Shape = tuple[int, int, bool]  # a two-branch problem: (merge step m, length of branch a, branches share a given)


def _shape(rng: random.Random, steps: int, spec: ProblemSpec) -> Shape | None:
    """The branch structure of a problem (``None``: a chain); drawn once per problem, so retries for bounds
    do not bias the share of two-branch problems."""
    if steps < 3 or rng.random() >= spec.branch_share:
        return None
    m = rng.randint(3, steps)
    return m, rng.randint(1, m - 2), rng.random() < SHARED_GIVEN


def _branched(b: _Builder, steps: int, shape: Shape) -> None:
    """Two independent chains (interleaved in generation order) of ``a`` and ``m - 1 - a`` steps merged by
    ``together`` at step ``m``, then a chain of ``steps - m`` steps."""
    m, a, shared = shape
    ga = b.given()
    gb = ga if shared else b.given()
    pools = {"a": [ga], "b": [gb]}  # each branch's own quantities; the last is its tip
    turns = ["a"] * a + ["b"] * (m - 1 - a)
    b.rng.shuffle(turns)
    for t in turns:
        tip = pools[t][-1]
        pools[t].append(b.step(tip, [n for n in pools[t] if n != tip]))
    _continue(b, b.merge(pools["a"][-1], pools["b"][-1]), steps - m)


def _distractor(b: _Builder) -> None:
    """A given or a relation of a needed quantity, placed at a random position it may take."""
    if b.rng.random() < 0.5:
        b.given(distractor=True, at=b.rng.randint(0, len(b.qs)))
        return
    src = b.rng.choice(b.needed())
    after = next(i for i, q in enumerate(b.qs) if q.name == src) + 1
    if b.derive(b.relations(src), distractor=True, at=b.rng.randint(after, len(b.qs))) is None:
        b.given(distractor=True, at=b.rng.randint(0, len(b.qs)))


def _try_problem(rng: random.Random, steps: int, spec: ProblemSpec,
                 shape: Shape | None) -> tuple[str, list[Quantity], tuple[str, ...] | None]:
    item = rng.choice(ITEMS)
    b = _Builder(rng, spec)
    if shape is None:
        _chain(b, steps)
    else:
        _branched(b, steps, shape)
    for _ in range(rng.randint(*spec.distractors)):
        _distractor(b)
    order = None
    if spec.shuffle is True:
        order = [q.name for q in b.qs]
        rng.shuffle(order)
    elif spec.shuffle is not False:
        order = window_shuffle([q.name for q in b.qs], spec.shuffle, rng)
    return item, b.qs, tuple(order) if order is not None else None


def window_shuffle(names: Sequence[str], k: int, rng: random.Random) -> list[str]:
    """``names`` in a random order where each moves at most ``k`` places: sorted by ``i + u_i``, ``u_i`` uniform in
    ``[0, k + 1)``, so two names more than ``k`` apart keep their order."""
    keys = [i + rng.random() * (k + 1) for i in range(len(names))]
    return [n for _, n in sorted(zip(keys, names))]


def make_problem(seed: int, index: int, steps: int, spec: ProblemSpec = ProblemSpec(), prefix: str = "p") -> Problem:
    """Create one problem with ``steps`` needed derived quantities, deterministically."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    most = steps + MAX_GIVENS + spec.distractors[1]
    if most > len(NAMES):
        raise ValueError(f"steps={steps} with up to {MAX_GIVENS} givens and up to {spec.distractors[1]} distractors "
                         f"needs {most} names; there are {len(NAMES)}")
    shape = _shape(_rng(seed, prefix, index, steps, "shape"), steps, spec)
    for attempt in range(1000):
        rng = _rng(seed, prefix, index, steps, attempt)
        try:
            item, qs, order = _try_problem(rng, steps, spec, shape)
        except _Retry:
            continue
        return Problem(pid=f"{prefix}{index:06d}", item=item, quantities=tuple(qs), seed=seed, order=order)
    raise RuntimeError("could not generate a problem within bounds; widen max_value")  # pragma: no cover


def make_problems(seed: int, count: int, steps_choices: list[int], spec: ProblemSpec, prefix: str) -> list[Problem]:
    """``count`` problems with steps drawn uniformly from ``steps_choices``."""
    rng = _rng(seed, prefix, "steps")
    return [make_problem(seed, i, rng.choice(steps_choices), spec, prefix) for i in range(count)]


def problem_key(p: Problem) -> str:
    """Content key: what a problem *is*, independent of its id and of the order its statements are written in;
    two problems with the same key are the same problem (it keeps the world's splits disjoint)."""
    return " ".join(sorted(p.statement(q) for q in p.quantities)) + f" ? {p.target.name}"


# --------------------------------------------------------------------------- step orders


def derived_inputs(problem: Problem) -> dict[str, tuple[str, ...]]:
    """``name -> the derived quantities it is computed from`` for every derived quantity (distractors too)."""
    derived = {q.name for q in problem.quantities if q.op != "given"}
    return {q.name: tuple(a for a in q.args if a in derived) for q in problem.quantities if q.op != "given"}


def is_valid_order(problem: Problem, names: Sequence[str]) -> bool:
    """Whether ``names`` states every needed derived quantity once, each after its derived inputs."""
    if sorted(names) != sorted(q.name for q in problem.derived):
        return False
    inputs, seen = derived_inputs(problem), set()
    for n in names:
        if not set(inputs[n]) <= seen:
            return False
        seen.add(n)
    return True


def valid_orders(problem: Problem, limit: int = 1000) -> list[tuple[str, ...]]:
    """Every valid order (topological order of the needed derived quantities), at most ``limit``,
    in lexicographic order of canonical indices (the canonical order first)."""
    names = [q.name for q in problem.derived]
    inputs = derived_inputs(problem)
    out: list[tuple[str, ...]] = []

    def extend(prefix: list[str], done: set[str]) -> None:
        if len(out) >= limit:
            return
        if len(prefix) == len(names):
            out.append(tuple(prefix))
            return
        for n in names:
            if n not in done and set(inputs[n]) <= done:
                extend(prefix + [n], done | {n})

    extend([], set())
    return out


def order_by(problem: Problem, key: Callable[[Quantity], Any]) -> list[Quantity]:
    """The valid order that always takes, of the quantities whose inputs are stated, the one with the
    smallest ``key`` (Kahn's algorithm)."""
    inputs = derived_inputs(problem)
    todo, done, out = list(problem.derived), set(), []
    while todo:
        q = min((q for q in todo if set(inputs[q.name]) <= done), key=key)
        todo.remove(q)
        done.add(q.name)
        out.append(q)
    return out


def _depth_first(problem: Problem, reverse: bool) -> list[Quantity]:
    """Post-order of a depth-first walk from the target, visiting a quantity's inputs left to right
    (right to left with ``reverse``): one branch is finished before the other is begun."""
    inputs, out, seen = derived_inputs(problem), [], set()

    def visit(name: str) -> None:
        seen.add(name)
        for a in reversed(inputs[name]) if reverse else inputs[name]:
            if a not in seen:
                visit(a)
        out.append(problem.quantity(name))

    visit(problem.target.name)
    return out


def levels(problem: Problem) -> dict[str, int]:
    """Each quantity's depth: the longest path from a given (givens are at depth 0)."""
    depth: dict[str, int] = {}
    for q in problem.quantities:  # topological order
        depth[q.name] = 1 + max(depth[a] for a in q.args) if q.args else 0
    return depth


def habit_order(problem: Problem, habit: str) -> list[Quantity]:
    """The needed derived quantities in the valid order a writer with ``habit`` (one of :data:`HABITS`) uses.

    ``canonical`` generation order; ``left_first`` / ``right_first`` a depth-first walk from the target over
    the inputs left to right / right to left; ``by_level`` by depth, ties in canonical order; ``statement``
    the ready quantity stated first in the text.
    """
    index = {q.name: i for i, q in enumerate(problem.derived)}
    if habit == "canonical":
        return list(problem.derived)
    if habit in ("left_first", "right_first"):
        return _depth_first(problem, reverse=habit == "right_first")
    if habit == "by_level":
        depth = levels(problem)
        return sorted(problem.derived, key=lambda q: (depth[q.name], index[q.name]))
    if habit == "statement":
        pos = {n: i for i, n in enumerate(problem.statement_order)}
        return order_by(problem, lambda q: pos[q.name])
    raise ValueError(f"unknown habit {habit!r}; known: {HABITS}")


def derived_in_order(problem: Problem, order: str | Sequence[str] | None = None) -> list[Quantity]:
    """The needed derived quantities in ``order``: a habit name, a valid order of names, or ``None`` (canonical)."""
    if order is None:
        return list(problem.derived)
    if isinstance(order, str):
        return habit_order(problem, order)
    if not is_valid_order(problem, order):
        raise ValueError(f"order {tuple(order)} is not a valid step order of problem {problem.pid!r}")
    return [problem.quantity(n) for n in order]


__all__ = [
    "HABITS",
    "NAMES",
    "ITEMS",
    "OPS",
    "Quantity",
    "Problem",
    "ProblemSpec",
    "apply_op",
    "derived_in_order",
    "derived_inputs",
    "habit_order",
    "is_valid_order",
    "levels",
    "make_problem",
    "make_problems",
    "order_by",
    "problem_key",
    "valid_orders",
    "window_shuffle",
    "asdict",
]
