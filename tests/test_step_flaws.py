"""The step-flaw study's classifier (benchmarks/step_flaws.py) on hand-written solutions of a fixed problem."""

from benchmod import load
from reasonlab.world.problems import Problem
from reasonlab.world.tasks import tiny_item


def _load():
    return load("step_flaws")


def _q(name, op, args, const, value, distractor=False):
    return {"name": name, "op": op, "args": list(args), "const": const, "value": value, "distractor": distractor}


# eve = 2; dan = 2 x eve; sam = eve + 9; rosa = sam - 7 (a distractor); jade = dan + sam
PROBLEM = Problem.from_record({"pid": "x000000", "item": "pens", "order": None, "graph": [
    _q("eve", "given", (), 2, 2), _q("dan", "times", ("eve",), 2, 4), _q("sam", "more", ("eve",), 9, 11),
    _q("rosa", "fewer", ("sam",), 7, 4, True), _q("jade", "together", ("dan", "sam"), None, 15)]})


def test_each_kind_of_first_operand_error_is_named():
    sf = _load()
    item = tiny_item(PROBLEM)
    texts = {
        "valid": "dan = 2 * 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15",
        "operation": "dan = 2 + 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15",
        "constant (borrowed)": "sam = 2 + 7 = 9 ; dan = 2 * 2 = 4 ; jade = 4 + 9 = 13 ; #### 13",
        "constant": "sam = 2 + 8 = 10 ; #### 10",
        "input": "dan = 2 * 2 = 4 ; jade = 4 + 2 = 6 ; #### 6",
        "input and constant": "sam = 3 + 8 = 11 ; #### 11",
        "arithmetic": "dan = 2 * 2 = 5 ; #### 5",
    }
    for want, text in texts.items():
        v = item.check(text)
        bad = [s for s in v.steps if not s.valid]
        if want == "valid":
            assert v.all_valid and not bad
            continue
        first = bad[0]
        if want == "arithmetic":
            assert sf.step_kind(PROBLEM, first) == "arithmetic"
            continue
        assert sf.step_kind(PROBLEM, first) == "quantity:operands", want
        assert sf.operand_error(PROBLEM, first) == want
    r = sf.analyse([item] * len(texts), list(texts.values()))
    assert r["n"] == 7 and r["all_valid"] == 1 / 7
    assert r["first_flaw"] == {"quantity:operands": 5, "arithmetic": 1}
    assert r["first_flaw_position"] == {1: 5, 2: 1}
    assert r["first_operand_error"] == {k: 1 for k in ("operation", "constant (borrowed)", "constant", "input",
                                                       "input and constant")}
    # a step naming a given quantity (not derived) is its own kind, not an operand error
    v = item.check("eve = 1 + 1 = 2 ; #### 2")
    assert sf.step_kind(PROBLEM, v.steps[0]) == "quantity:not_derived"


def test_a_swapped_sum_or_product_is_read_in_the_order_it_matches():
    # the verifier accepts "sam = 9 + 2" for sam = eve + 9, so a wrong step written constant-first must be
    # compared in that orientation: only the input is wrong here, not input and constant
    sf = _load()
    item = tiny_item(PROBLEM)
    for text, want in [("sam = 9 + 3 = 12 ; #### 12", "input"), ("sam = 7 + 2 = 9 ; #### 9", "constant (borrowed)"),
                       ("dan = 3 * 2 = 6 ; #### 6", "input"), ("sam = 3 + 8 = 11 ; #### 11", "input and constant")]:
        first = next(s for s in item.check(text).steps if not s.valid)
        assert sf.operand_error(PROBLEM, first) == want, text
