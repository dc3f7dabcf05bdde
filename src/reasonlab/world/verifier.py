"""Answer extraction, exact answer check and a step checker for every dialect.

The world knows each problem's computation graph, so a step is checked
exactly: its arithmetic must hold, it must compute the quantity it names from
that quantity's true inputs, its inputs must have been stated by earlier steps
(any valid step order is accepted), and the quantity must be needed (not a
distractor). The set of needed quantities a trace states correctly, whatever
the order, is its set of "information atoms".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .dialects import DIALECTS, PARSE_ORDER
from .problems import HABITS, Problem, apply_op, derived_inputs, habit_order

FLAWS = ("unparsed", "arithmetic", "quantity", "form", "order", "unneeded")


@dataclass(frozen=True)
class StepCheck:
    text: str
    dialect: str | None  # None: the sentence is not a step in any dialect
    name: str | None = None
    arithmetic_ok: bool = False
    quantity_ok: bool = False  # names a derived quantity and uses its true inputs and value
    form_ok: bool = True  # dialect-specific bookkeeping (e.g. the step number of numbered steps)
    order_ok: bool = True  # every derived input was stated by an earlier step
    needed: bool = True  # False: the quantity is a distractor

    @property
    def flaw(self) -> str | None:
        """``None`` for a valid step, else the first failing check of :data:`FLAWS`."""
        checks = (self.dialect is not None, self.arithmetic_ok, self.quantity_ok, self.form_ok, self.order_ok,
                  self.needed)
        return next((f for f, ok in zip(FLAWS, checks) if not ok), None)

    @property
    def states(self) -> bool:
        """The step states its quantity correctly (arithmetic, quantity, form), whatever came before it."""
        return self.arithmetic_ok and self.quantity_ok and self.form_ok

    @property
    def valid(self) -> bool:
        return self.flaw is None


@dataclass(frozen=True)
class Verdict:
    answer: int | None
    correct: bool
    steps: tuple[StepCheck, ...]
    has_answer: bool
    atoms: frozenset[str] = field(default_factory=frozenset)  # needed quantities stated correctly (any order)
    n_derived: int = 0
    order: tuple[str, ...] = ()  # needed quantities in the order the trace states them validly
    habits: tuple[str, ...] = ()  # the habits whose order is ``order`` (empty unless every one is stated)

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_valid(self) -> int:
        return sum(s.valid for s in self.steps)

    @property
    def step_validity(self) -> float:
        """Share of the trace's step sentences that are valid (0 for a trace with no step)."""
        return self.n_valid / self.n_steps if self.steps else 0.0

    @property
    def all_valid(self) -> bool:
        """Correct answer, every step valid, and every needed derived quantity stated."""
        return self.correct and self.n_steps > 0 and self.n_valid == self.n_steps and len(self.atoms) == self.n_derived

    @property
    def dialect(self) -> str | None:
        """The dialect most steps are written in (a tie goes to the one that appears first)."""
        names = [s.dialect for s in self.steps if s.dialect]
        return Counter(names).most_common(1)[0][0] if names else None


def split_sentences(text: str) -> list[str]:
    out, cur = [], []
    for tok in text.split():
        if tok in (".", ";"):
            if cur:
                out.append(" ".join(cur))
            cur = []
        else:
            cur.append(tok)
    if cur:
        out.append(" ".join(cur))
    return out


def extract_answer(text: str) -> int | None:
    """The number in the last answer sentence, in whichever dialect it is written."""
    ans = None
    for sent in split_sentences(text):
        for d in PARSE_ORDER:
            m = DIALECTS[d].answer_re.match(sent)
            if m:
                ans = int(m.group("r"))
                break
    return ans


def check_step(problem: Problem, sent: str, position: int = 1, stated: set[str] | None = None) -> StepCheck | None:
    """Check one sentence (the ``position``-th step of its trace); ``None`` if it is an answer sentence.

    ``stated``: the quantities earlier steps stated (``None``: assume every input was stated).
    """
    for d in PARSE_ORDER:
        if DIALECTS[d].answer_re.match(sent):
            return None
    derived = {q.name: q for q in problem.quantities if q.op != "given"}
    values = problem.values
    for d in PARSE_ORDER:
        m = DIALECTS[d].step_re.match(sent)
        if not m:
            continue
        g = m.groupdict()
        a, op, b, r = int(g["a"]), g["op"], int(g["b"]), int(g["r"])
        arithmetic_ok = apply_op(a, op, b) == r and (g.get("r2") is None or int(g["r2"]) == r)
        name = g["name"]
        q = derived.get(name)
        quantity_ok = False
        if q is not None and (g.get("item") is None or g["item"] == problem.item) and g.get("name2", name) == name:
            ta, top, tb = q.operands(values)
            same = (a, op, b) == (ta, top, tb) or (op == top and op in "+*" and (a, b) == (tb, ta))
            quantity_ok = same and r == q.value
        form_ok = g.get("i") is None or int(g["i"]) == position
        if g.get("rel") is not None:  # the textbook dialect restates the relation: it must be the problem's
            form_ok = form_ok and q is not None and g["rel"] + " ." == problem.statement(q)
        order_ok = q is None or stated is None or set(derived_inputs(problem)[q.name]) <= stated
        needed = q is None or not q.distractor
        return StepCheck(sent, d, name, arithmetic_ok, quantity_ok, form_ok, order_ok, needed)
    return StepCheck(sent, None)


def stated_order(steps: tuple[StepCheck, ...] | list[StepCheck]) -> tuple[str, ...]:
    """The quantities of the valid steps in trace order (each once)."""
    return tuple(dict.fromkeys(s.name for s in steps if s.valid))


def habits_of(problem: Problem, order: tuple[str, ...]) -> tuple[str, ...]:
    """The habits of :data:`HABITS` whose order is ``order`` (empty if ``order`` misses a needed quantity)."""
    if len(order) != problem.steps:
        return ()
    return tuple(h for h in HABITS if tuple(q.name for q in habit_order(problem, h)) == order)


def verify(problem: Problem, text: str) -> Verdict:
    """Verify a generated or written solution of ``problem``."""
    steps: list[StepCheck] = []
    stated: set[str] = set()
    has_answer = False
    for sent in split_sentences(text):
        c = check_step(problem, sent, position=len(steps) + 1, stated=stated)
        if c is None:
            has_answer = True
            continue
        steps.append(c)
        if c.states:
            stated.add(c.name)
    ans = extract_answer(text)
    order = stated_order(steps)
    return Verdict(
        answer=ans,
        correct=ans is not None and ans == problem.answer,
        steps=tuple(steps),
        has_answer=has_answer,
        atoms=frozenset(s.name for s in steps if s.states and s.needed),
        n_derived=problem.steps,
        order=order,
        habits=habits_of(problem, order),
    )


__all__ = ["FLAWS", "StepCheck", "Verdict", "apply_op", "check_step", "extract_answer", "habits_of", "split_sentences",
           "stated_order", "verify"]
