"""The order-freedom study (benchmarks/order_freedom.py) on two fixed problems: a chain and a fork."""

from benchmod import load
from reasonlab.world.problems import Problem


def _q(name, op, args, const, value, distractor=False):
    return {"name": name, "op": op, "args": list(args), "const": const, "value": value, "distractor": distractor}


# eve = 2; dan = 2 x eve; jade = dan + 3: one valid order
CHAIN = Problem.from_record({"pid": "x000001", "item": "pens", "order": None, "graph": [
    _q("eve", "given", (), 2, 2), _q("dan", "times", ("eve",), 2, 4), _q("jade", "more", ("dan",), 3, 7)]})
# eve = 2; dan = 2 x eve; sam = eve + 9; jade = dan + sam: dan and sam in either order
FORK = Problem.from_record({"pid": "x000002", "item": "pens", "order": None, "graph": [
    _q("eve", "given", (), 2, 2), _q("dan", "times", ("eve",), 2, 4), _q("sam", "more", ("eve",), 9, 11),
    _q("jade", "together", ("dan", "sam"), None, 15)]})


def test_a_chain_leaves_no_room_and_a_fork_separates_the_habits():
    of = load("order_freedom")
    for fam in of.FAMILIES:
        assert not of.habit_differs(CHAIN, fam)
    # left_first (qwen) walks dan's branch first, right_first (the oracle) sam's; by_level (llama) breaks the tie
    # between dan and sam in canonical order, dan first
    assert of.habit_differs(FORK, "qwen") and of.habit_differs(FORK, "llama")
    assert not of.habit_differs(FORK, "oracle")
    r = of.order_freedom([CHAIN, FORK, FORK])
    assert list(r) == ["2", "3", "all"]
    assert r["2"] == {"n": 1, "several_orders": 0.0, "qwen": 0.0, "llama": 0.0,
                      "deepseek": 0.0}
    assert r["3"]["n"] == 2 and r["3"]["several_orders"] == 1.0 and r["3"]["qwen"] == 1.0
    assert r["all"]["n"] == 3 and abs(r["all"]["several_orders"] - 2 / 3) < 1e-12


def test_differences_are_sorted_by_what_differs():
    of = load("order_freedom")
    a = "dan = 2 * 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15"
    assert of.difference(FORK, a, a) == "same"
    assert of.difference(FORK, a, "sam = 2 + 9 = 11 ; dan = 2 * 2 = 4 ; jade = 4 + 11 = 15 ; #### 15") == "step order"
    assert of.difference(FORK, a, "dan = 2 * 2 = 4 ; sam = 9 + 2 = 11 ; jade = 11 + 4 = 15 ; #### 15") == "operand order"
    # a different number, or another dialect, is neither
    assert of.difference(FORK, a, "dan = 2 * 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 16 ; #### 16") == "other"
