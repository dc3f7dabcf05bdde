"""Multi-step word problems over named quantities.

A problem is a small computation graph: one or two *given* quantities and ``k``
*derived* ones, each derived from earlier quantities by one of four relations
(``more``, ``fewer``, ``times``, ``together``). Every quantity belongs to a
different person and counts the same item, so the text stays in a closed
vocabulary. All values are bounded integers in ``[0, max_value]``.

Generation is a pure function of ``(seed, index, steps)`` so a problem can be
re-created from its id alone, which is what makes the world deterministic.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field

NAMES = (
    "ann ben carl dan eve finn gus hana ivan jade kai lena milo nora owen pia "
    "quinn rosa sam tara uma vic wes zoe"
).split()
ITEMS = "apples pens books cards shells coins stamps marbles beads cups kites leaves".split()
OPS = ("more", "fewer", "times", "together")
TIMES_WORD = {2: "twice", 3: "three times"}
SYMBOL = {"more": "+", "fewer": "-", "times": "*", "together": "+"}


@dataclass(frozen=True)
class Quantity:
    """One node of the computation graph.

    ``args`` names the earlier quantities it depends on; ``const`` is the
    literal of the relation (the given value, the added/removed amount or the
    multiplier).
    """

    name: str
    op: str  # "given" | one of OPS
    args: tuple[str, ...]
    const: int | None
    value: int

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
    pid: str
    item: str
    quantities: tuple[Quantity, ...]
    seed: int = field(default=0, compare=False)

    @property
    def given(self) -> list[Quantity]:
        return [q for q in self.quantities if q.op == "given"]

    @property
    def derived(self) -> list[Quantity]:
        return [q for q in self.quantities if q.op != "given"]

    @property
    def steps(self) -> int:
        return len(self.derived)

    @property
    def target(self) -> Quantity:
        return self.quantities[-1]

    @property
    def answer(self) -> int:
        return self.target.value

    @property
    def values(self) -> dict[str, int]:
        return {q.name: q.value for q in self.quantities}

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
        body = " ".join(self.statement(q) for q in self.quantities)
        return f"{body} how many {self.item} does {self.target.name} have ?"

    def to_record(self) -> dict:
        return {
            "pid": self.pid,
            "item": self.item,
            "steps": self.steps,
            "answer": self.answer,
            "text": self.text,
            "graph": [
                {"name": q.name, "op": q.op, "args": list(q.args), "const": q.const, "value": q.value}
                for q in self.quantities
            ],
        }

    @classmethod
    def from_record(cls, rec: dict) -> "Problem":
        try:
            qs = tuple(
                Quantity(g["name"], g["op"], tuple(g["args"]), g["const"], int(g["value"]))
                for g in rec["graph"]
            )
            return cls(pid=str(rec["pid"]), item=str(rec["item"]), quantities=qs)
        except (KeyError, TypeError) as e:  # pragma: no cover - message path tested
            raise ValueError(f"malformed problem record (pid={rec.get('pid')!r}): missing {e}") from e


@dataclass(frozen=True)
class ProblemSpec:
    max_value: int = 40
    given_range: tuple[int, int] = (2, 20)
    const_range: tuple[int, int] = (1, 9)


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def make_problem(seed: int, index: int, steps: int, spec: ProblemSpec = ProblemSpec(), prefix: str = "p") -> Problem:
    """Create one problem with ``steps`` derived quantities, deterministically."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps + 2 > len(NAMES):
        raise ValueError(f"steps must be <= {len(NAMES) - 2}, got {steps}")
    for attempt in range(1000):
        rng = _rng(seed, prefix, index, steps, attempt)
        out = _try_problem(rng, steps, spec)
        if out is not None:
            item, qs = out
            return Problem(pid=f"{prefix}{index:06d}", item=item, quantities=tuple(qs), seed=seed)
    raise RuntimeError("could not generate a problem within bounds; widen max_value")  # pragma: no cover


def _try_problem(rng: random.Random, steps: int, spec: ProblemSpec):
    item = rng.choice(ITEMS)
    names = rng.sample(NAMES, steps + 2)
    n_given = 2 if steps >= 2 and rng.random() < 0.5 else 1
    qs: list[Quantity] = []
    vals: dict[str, int] = {}
    lo, hi = spec.given_range
    for i in range(n_given):
        v = rng.randint(lo, hi)
        qs.append(Quantity(names[i], "given", (), v, v))
        vals[names[i]] = v
    for s in range(steps):
        name = names[n_given + s]
        prev = qs[-1].name  # chain: every step uses the one before, so the target depends on all
        if s == 0 and n_given == 2:
            choices = [("together", (qs[0].name, qs[1].name), None)]
        else:
            choices = []
            for op in OPS:
                if op == "together":
                    others = [q.name for q in qs[:-1]]
                    if others:
                        choices.append((op, (prev, rng.choice(others)), None))
                elif op == "times":
                    choices.append((op, (prev,), rng.choice((2, 3))))
                else:
                    clo, chi = spec.const_range
                    choices.append((op, (prev,), rng.randint(clo, chi)))
        rng.shuffle(choices)
        for op, args, const in choices:
            q = Quantity(name, op, args, const, 0)
            a, sym, b = q.operands(vals)
            v = a + b if sym == "+" else a - b if sym == "-" else a * b
            if 0 <= v <= spec.max_value:
                qs.append(Quantity(name, op, args, const, v))
                vals[name] = v
                break
        else:
            return None
    return item, qs


def make_problems(seed: int, count: int, steps_choices: list[int], spec: ProblemSpec, prefix: str) -> list[Problem]:
    """``count`` problems with steps drawn uniformly from ``steps_choices``."""
    rng = _rng(seed, prefix, "steps")
    return [make_problem(seed, i, rng.choice(steps_choices), spec, prefix) for i in range(count)]


def problem_key(p: Problem) -> str:
    """Content key: two problems with the same key are the same problem."""
    return p.text


__all__ = [
    "NAMES",
    "ITEMS",
    "OPS",
    "Quantity",
    "Problem",
    "ProblemSpec",
    "make_problem",
    "make_problems",
    "problem_key",
    "asdict",
]
