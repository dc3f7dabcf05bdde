import numpy as np
import pytest

from reasonlab.evaluate import avg_at_k, bootstrap_ci, mean_sd, pass_at_k, wilson_ci


def test_avg_at_k_fixed_input():
    c = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    assert avg_at_k(c) == pytest.approx((0.25 + 1 + 0) / 3)
    assert pass_at_k(c) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        avg_at_k(np.zeros((0, 4)))


def test_wilson_known_values():
    lo, hi = wilson_ci(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    lo, hi = wilson_ci(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-3)


def test_bootstrap_ci_brackets_mean_and_is_deterministic():
    x = np.random.default_rng(0).random(200)
    lo, hi = bootstrap_ci(x, seed=1)
    assert lo < x.mean() < hi
    assert (lo, hi) == bootstrap_ci(x, seed=1)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)


def test_mean_sd():
    assert mean_sd([1, 2, 3]) == (2.0, 1.0)
    assert mean_sd([5]) == (5.0, 0.0)
