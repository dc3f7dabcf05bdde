"""The final sampled evaluation of the capability study (benchmarks/capability.py) on hand-written samples."""

import pytest

from benchmod import load
from reasonlab.world.tasks import tiny_item
from test_step_flaws import PROBLEM

VALID = "dan = 2 * 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15"
LUCKY = "dan = 2 + 2 = 4 ; sam = 2 + 9 = 11 ; jade = 4 + 11 = 15 ; #### 15"  # right answer, a wrong step
WRONG = "sam = 2 + 8 = 10 ; #### 10"


def test_sample_summary_counts_answers_validity_and_what_rft_keeps():
    cap = load("capability")
    item = tiny_item(PROBLEM)
    s = cap.sample_summary([item, item], [[VALID, LUCKY, WRONG, WRONG], [WRONG, WRONG, WRONG, WRONG]])
    assert s["k"] == 4 and s["n"] == 2
    assert s["avg"] == pytest.approx(2 / 8) and s["pass"] == 0.5 and s["all_valid"] == pytest.approx(1 / 8)
    # one solved problem, two right samples of which one is fully valid: a random pick is valid half the time
    assert s["rft_valid"] == 0.5
    assert s["avg_by_steps"] == {PROBLEM.steps: pytest.approx(2 / 8)}
    assert cap.sample_summary([item], [[WRONG, WRONG]])["rft_valid"] == 0.0
