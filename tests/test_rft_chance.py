"""The chance study (benchmarks/rft_chance.py) on hand-written samples of a fixed problem."""

from benchmod import load
from reasonlab.world.tasks import tiny_item
from test_step_flaws import PROBLEM


def test_right_answers_from_invalid_derivations_are_counted_per_length():
    rc = load("rft_chance")
    item = tiny_item(PROBLEM)
    samples = {PROBLEM.pid: [
        {"text": "dan = 2 * 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15", "reason": None},  # valid
        {"text": "dan = 2 + 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15", "reason": None},  # lucky
        {"text": "sam = 2 + 8 = 10 ; #### 10", "reason": None},  # wrong
        {"text": "jade = 15 ; #### 15", "reason": "repeated_sentence"},  # filtered: not counted
    ]}
    t = rc.chance_table({PROBLEM.pid: item}, samples)
    assert list(t) == [str(PROBLEM.steps)]
    row = t[str(PROBLEM.steps)]
    assert row["samples"] == 3 and row["problems"] == 1 and row["solvable"] == 1 and row["invalid"] == 2
    assert row["fully_valid"] == round(1 / 3, 4) and row["right_if_invalid"] == 0.5
    # one problem: the baseline compares with the same gold answer, so it equals the observed share
    assert row["chance"] == 0.5
    # no right answer among the kept samples: not solvable, and nothing right by chance
    t = rc.chance_table({PROBLEM.pid: item}, {PROBLEM.pid: samples[PROBLEM.pid][2:3]})
    assert t[str(PROBLEM.steps)]["solvable"] == 0 and t[str(PROBLEM.steps)]["right_if_invalid"] == 0.0
