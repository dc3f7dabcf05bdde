"""World v2: branched problems with several valid step orders, distractors, shuffled statements,
order habits, the dialect-drift dial and a verifier that accepts every valid derivation."""

import itertools

import numpy as np
import pytest

from reasonlab.world.dialects import DIALECT_HABIT, DIALECTS, drifted_steps, render_drift, render_solution, \
    render_steps, solution_steps
from reasonlab.world.problems import HABITS, NAMES, Problem, ProblemSpec, habit_order, is_valid_order, \
    make_problem, make_problems, valid_orders
from reasonlab.world.verifier import FLAWS, apply_op, check_step, split_sentences, verify


def inputs_closure(p: Problem, name: str) -> set[str]:
    """Every quantity ``name`` depends on, directly or not."""
    q = p.quantity(name)
    out = set(q.args)
    for a in q.args:
        out |= inputs_closure(p, a)
    return out


def names(qs) -> tuple[str, ...]:
    return tuple(q.name for q in qs)


@pytest.fixture(scope="module")
def mixed() -> list[Problem]:
    return make_problems(0, 500, [3, 4, 5], ProblemSpec(), "m")


@pytest.fixture(scope="module")
def two_worlds() -> list[Problem]:
    return [p for seed in (0, 90210) for p in make_problems(seed, 150, [2, 3, 4, 5, 6, 7], ProblemSpec(), "v")]


# --------------------------------------------------------------------------- generation


def test_generation_is_deterministic():
    a, b, c = make_problem(3, 17, 5), make_problem(3, 17, 5), make_problem(4, 17, 5)
    assert a == b and a.text == b.text and a.order == b.order
    assert a.text != c.text


def test_graph_bounds_arithmetic_and_names(two_worlds):
    for p in two_worlds:
        assert all(0 <= v <= 40 for v in p.values.values())
        assert len({q.name for q in p.quantities}) == len(p.quantities)
        seen = set()
        for q in p.quantities:  # topological: inputs first
            assert set(q.args) <= seen
            seen.add(q.name)
            if q.op != "given":
                assert apply_op(*q.operands(p.values)) == q.value


def test_structure_shares(mixed):
    multi = np.mean([len(valid_orders(p)) >= 2 for p in mixed])
    assert multi >= 0.5, multi
    assert all(1 <= len(p.distractors) <= 2 for p in mixed)
    assert np.mean([p.order != names(p.quantities) for p in mixed]) >= 0.9
    for p in mixed:
        deps = inputs_closure(p, p.target.name)
        assert {q.name for q in p.derived[:-1]} <= deps  # the target needs every needed derived quantity
        assert not deps & {q.name for q in p.distractors}
        assert p.steps == len(p.derived) and p.target == p.derived[-1]
        assert p.text.endswith(f"how many {p.item} does {p.target.name} have ?")


def test_plain_spec_gives_chains_in_statement_order():
    spec = ProblemSpec(branch_share=0, distractors=(0, 0), shuffle=False)
    for p in make_problems(0, 100, [1, 2, 3, 4, 5], spec, "c"):
        assert valid_orders(p) == [names(p.derived)] and not p.distractors and p.order is None
        assert p.text.startswith(p.statement(p.quantities[0]))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_window_shuffle_moves_each_statement_at_most_k_places(k):
    spec = ProblemSpec(distractors=(1, 2), shuffle=k)
    moved = []
    for p in make_problems(0, 200, [3, 4, 5], spec, "w"):
        gen = [q.name for q in p.quantities]
        assert sorted(p.order) == sorted(gen)
        shift = [abs(p.order.index(n) - i) for i, n in enumerate(gen)]
        assert max(shift) <= k
        moved.append(max(shift))
    # the window is used, not only respected: some statement moves the full k places in some problem
    assert max(moved) == k and np.mean([m > 0 for m in moved]) > 0.5
    full = make_problems(0, 200, [5], ProblemSpec(distractors=(1, 2), shuffle=True), "w")
    assert max(max(abs(p.order.index(q.name) - i) for i, q in enumerate(p.quantities)) for p in full) > k


def test_spec_and_name_budget_are_checked():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="shuffle"):
            ProblemSpec(shuffle=bad)
    with pytest.raises(ValueError, match="branch_share"):
        ProblemSpec(branch_share=1.5)
    with pytest.raises(ValueError, match="distractors"):
        ProblemSpec(distractors=(2, 1))
    with pytest.raises(ValueError, match="names"):
        make_problem(0, 0, len(NAMES) - 3)
    p = make_problem(0, 0, len(NAMES) - 4)
    assert len(p.quantities) <= len(NAMES)


def test_record_round_trip_and_old_records():
    p = make_problem(5, 2, 5)
    rec = p.to_record()
    back = Problem.from_record(rec)
    assert back == p and back.text == p.text == rec["text"]
    assert [g["distractor"] for g in rec["graph"]] == [q.distractor for q in p.quantities]
    graph = [{"name": "ann", "op": "given", "args": [], "const": 3, "value": 3},
             {"name": "ben", "op": "more", "args": ["ann"], "const": 2, "value": 5}]
    old = {"pid": "x1", "item": "pens", "graph": graph}
    q = Problem.from_record(old)
    assert q.order is None and not q.distractors and q.answer == 5
    assert q.text == "ann has 3 pens . ben has 2 more pens than ann . how many pens does ben have ?"


# --------------------------------------------------------------------------- orders and habits


def test_valid_orders_are_every_topological_order(mixed):
    for p in mixed[:100]:
        orders = valid_orders(p)
        brute = [o for o in itertools.permutations(names(p.derived)) if is_valid_order(p, o)]
        assert sorted(orders) == sorted(brute) and len(set(orders)) == len(orders)
        assert orders[0] == names(p.derived)
    p = next(p for p in mixed if len(valid_orders(p)) >= 3)
    assert valid_orders(p, limit=2) == valid_orders(p)[:2]


def test_habits_are_valid_and_differ(mixed):
    multi = [p for p in mixed if len(valid_orders(p)) >= 2]
    for p in multi:
        orders = set(valid_orders(p))
        assert all(names(habit_order(p, h)) in orders for h in HABITS)
        assert names(habit_order(p, "canonical")) == names(p.derived)
    assert np.mean([habit_order(p, "left_first") != habit_order(p, "right_first") for p in multi]) >= 0.9
    assert set(DIALECT_HABIT) == set(DIALECTS) and set(DIALECT_HABIT.values()) <= set(HABITS)
    with pytest.raises(ValueError, match="sideways"):
        habit_order(multi[0], "sideways")


def test_depth_first_habits_finish_one_branch_before_the_other(mixed):
    merged = [p for p in mixed if p.target.op == "together" and all(p.quantity(a).op != "given" for a in p.target.args)]
    assert len(merged) > 20
    for p in merged:
        left, right = (names(habit_order(p, h)) for h in ("left_first", "right_first"))
        for order, first in ((left, p.target.args[0]), (right, p.target.args[1])):
            branch = ({first} | inputs_closure(p, first)) & set(order)
            assert set(order[: len(branch)]) == branch, (order, branch)


def test_statement_habit_follows_the_text(mixed):
    for p in mixed[:200]:
        order = names(habit_order(p, "statement"))
        pos = {n: i for i, n in enumerate(p.order)}
        for i, n in enumerate(order):  # nothing ready earlier in the text was passed over
            ready = [m for m in order[i:] if not set(inputs_closure(p, m)) & set(order[i:])]
            assert pos[n] == min(pos[m] for m in ready)


# --------------------------------------------------------------------------- verifier


def test_verifier_accepts_every_valid_order_in_every_dialect(two_worlds):
    for p in two_worlds:
        for order in valid_orders(p):
            habits = tuple(h for h in HABITS if names(habit_order(p, h)) == order)
            if len(valid_orders(p)) == 1:
                assert habits == HABITS
            for d in DIALECTS:
                text = render_solution(p, d, order)
                v = verify(p, text)
                assert v.correct and v.all_valid, (d, text)
                assert v.order == order and v.habits == habits and v.dialect == d
                assert v.atoms == set(order)
        for d in DIALECTS:
            assert DIALECT_HABIT[d] in verify(p, render_solution(p, d)).habits


def flaws(p: Problem, dialect: str, steps) -> list[str | None]:
    """The flaw of every step of ``steps`` written in ``dialect`` (a flawed trace is never all_valid)."""
    v = verify(p, render_steps(p, dialect, steps, p.answer))
    out = [s.flaw for s in v.steps]
    assert v.all_valid == (out == [None] * p.steps)
    return out


def test_step_flaws_of_corruptions(two_worlds):
    seen = {"order": 0, "unneeded": 0}
    for k, p in enumerate(two_worlds[:120]):
        d = list(DIALECTS)[k % len(DIALECTS)]
        good = solution_steps(p, d)
        pos = {q.name: i for i, (q, *_) in enumerate(good)}
        assert flaws(p, d, good) == [None] * p.steps
        i = k % p.steps
        q, a, op, b, r = good[i]
        # wrong operand (arithmetic right) / wrong value
        b2 = b - 1 if op == "-" else b + 1
        bad = good[:i] + [(q, a, op, b2, apply_op(a, op, b2))] + good[i + 1:]
        assert flaws(p, d, bad)[i] == "quantity"
        assert flaws(p, d, good[:i] + [(q, a, op, b, r + 1)] + good[i + 1:])[i] == "arithmetic"
        # a step placed before its input's step
        for j, (qj, *_) in enumerate(good):
            ins = [pos[x] for x in qj.args if x in pos]
            if ins:
                at = min(ins)
                moved = good[:at] + [good[j]] + [s for s in good[at:] if s[0] is not qj]
                fl = flaws(p, d, moved)
                assert fl[at] == "order" and fl.count(None) == p.steps - 1, (moved, fl)
                seen["order"] += 1
                break
        # a skipped step: the step that used it is out of order, its atom is missing
        if p.steps >= 2:
            j = k % (p.steps - 1)
            skipped = good[j][0].name
            v = verify(p, render_steps(p, d, good[:j] + good[j + 1:], p.answer))
            assert skipped not in v.atoms and not v.all_valid and v.correct
            users = [s for s in v.steps if s.name in {u.name for u in p.derived if skipped in u.args}]
            assert users and all(s.flaw == "order" for s in users)
        # a correct step computing a distractor
        extra = next((x for x in p.distractors if x.op != "given"), None)
        if extra is not None:
            at = pos.get(extra.args[0], -1) + 1
            vals = p.values
            steps = good[:at] + [(extra, *extra.operands(vals), extra.value)] + good[at:]
            fl = flaws(p, d, steps)
            assert fl[at] == "unneeded" and fl.count(None) == p.steps
            v = verify(p, render_steps(p, d, steps, p.answer))
            assert v.correct and not v.all_valid and extra.name not in v.atoms
            seen["unneeded"] += 1
    assert seen["order"] > 30 and seen["unneeded"] > 30, seen


def test_every_dialect_names_the_quantity_before_its_arithmetic_and_llama_names_it_twice_consistently():
    p = make_problem(0, 1, 3, ProblemSpec(distractors=(0, 0), shuffle=False))
    q = p.derived[0]
    for d in DIALECTS:
        first = render_solution(p, d).split(" . " if d != "oracle" else " ; ")[0]
        words = first.split()
        arithmetic = next(i for i, w in enumerate(words) if w in "+-*") - 1  # the first operand
        assert {x.name for x in p.derived} & set(words[:arithmetic]), d
    other = next(n for n in NAMES if n not in {x.name for x in p.quantities})
    good = render_solution(p, "llama")
    bad = good.replace(f"so {q.name} has", f"so {other} has", 1)
    assert verify(p, good).all_valid and bad != good
    v = verify(p, bad)
    assert v.steps[0].dialect == "llama" and v.steps[0].flaw == "quantity" and not v.all_valid


def test_check_step_without_history_assumes_inputs_exist():
    p = make_problem(0, 9, 4)
    last = split_sentences(render_solution(p, "qwen"))[p.steps - 1]
    assert check_step(p, last, p.steps).valid
    assert check_step(p, last, p.steps, stated=set()).flaw == "order"  # the target's inputs were never stated
    assert check_step(p, "the answer is 3", 1) is None
    assert check_step(p, "hello world", 1).flaw == "unparsed" == FLAWS[0]


# --------------------------------------------------------------------------- drift dial


@pytest.mark.parametrize("dialect,other", [("qwen", "oracle"), ("llama", "oracle"), ("deepseek", "oracle"),
                                           ("reference", "qwen"), ("oracle", "deepseek")])
def test_drift_dial(two_worlds, dialect, other):
    for p in two_worlds[:80]:
        assert render_drift(p, dialect, 0.0, 1, other) == render_solution(p, dialect)
        for share in (0.25, 0.5, 1.0):
            text = render_drift(p, dialect, share, 1, other)
            v = verify(p, text)
            assert v.all_valid, text
            assert DIALECT_HABIT[dialect] in v.habits  # the order stays the dialect's habit
            drifted = [s.dialect == other for s in v.steps]
            assert all(s.dialect in (dialect, other) for s in v.steps)
            assert sum(drifted) == round(share * p.steps)
            assert [i for i, x in enumerate(drifted) if x] == sorted(drifted_steps(p, share, 1))
        assert check_step(p, split_sentences(render_drift(p, dialect, 1.0, 1, other))[-1]) is None
        assert DIALECTS[other].answer_re.match(split_sentences(render_drift(p, dialect, 1.0, 1, other))[-1])
    assert render_drift(p, dialect, 0.5, 1, other) == render_drift(p, dialect, 0.5, 1, other)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="share"):
            render_drift(p, dialect, bad, 1, other)


def test_render_solution_order_argument():
    p = next(q for q in make_problems(2, 50, [5], ProblemSpec(), "o") if len(valid_orders(q)) >= 2)
    for habit in HABITS:
        assert render_solution(p, "qwen", habit) == render_solution(p, "qwen", names(habit_order(p, habit)))
    assert render_solution(p, "qwen") == render_solution(p, "qwen", DIALECT_HABIT["qwen"])
    bad = tuple(reversed(names(p.derived)))
    with pytest.raises(ValueError, match="valid step order"):
        render_solution(p, "qwen", bad)
    with pytest.raises(ValueError, match="unknown dialect"):
        render_solution(p, "klingon")
    text = render_solution(p, "deepseek", valid_orders(p)[-1])
    assert [int(s.split()[1]) for s in split_sentences(text)[:-1]] == list(range(1, p.steps + 1))


# --------------------------------------------------------------------------- drafts and repairs


def test_drafts_follow_the_dialect_habit_and_repairs_keep_the_draft_order(mixed):
    from reasonlab.paradox.drafts import make_draft
    from reasonlab.paradox.oracle import oracle_target, repair_order

    rng = np.random.default_rng(0)
    for p in [q for q in mixed if len(valid_orders(q)) >= 2][:40]:
        for d in ("qwen", "llama", "deepseek"):
            for order in valid_orders(p)[:4]:
                text = render_solution(p, d, order)
                assert names(repair_order(p, text)) == order
                assert oracle_target("style", p, text, d) == text
            slip = make_draft(p, d, "arithmetic", rng, ProblemSpec().max_value)
            if slip is not None:
                assert names(repair_order(p, slip.text)) == names(habit_order(p, DIALECT_HABIT[d]))
                assert verify(p, oracle_target("refine", p, slip.text)).all_valid
            skip = make_draft(p, d, "skip", rng, ProblemSpec().max_value)
            assert verify(p, oracle_target("style", p, skip.text, d)).all_valid
        assert "right_first" in verify(p, oracle_target("synth", p)).habits
