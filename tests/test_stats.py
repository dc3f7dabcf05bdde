import numpy as np
import pytest

from reasonlab.stats import paired_diff


def test_a_known_difference_is_found():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    student = np.clip(base[None, :] + 0.1 + rng.normal(0, 0.05, (3, 200)), 0, 2)  # 3 seeds, +0.1 each
    r = paired_diff(student, base)
    assert r["n_seeds"] == 3 and r["n_problems"] == 200
    assert r["ci95"][0] > 0.05 and abs(r["mean"] - 0.1) < 0.02
    assert r["se"] > 0


def test_a_zero_difference_is_not():
    rng = np.random.default_rng(2)
    base = rng.random(300)
    noise = rng.normal(0, 0.2, (4, 300))
    r = paired_diff(base[None, :] + noise - noise.mean(), base)  # mean exactly zero
    assert abs(r["mean"]) < 1e-12 and r["ci95"][0] < 0 < r["ci95"][1]


def test_pairing_is_what_narrows_the_interval():
    """Problems vary far more than the difference: paired, the interval is narrow; the unpaired sd would not be."""
    rng = np.random.default_rng(3)
    difficulty = rng.random(100)
    r = paired_diff(difficulty + 0.02, difficulty)
    assert r["ci95"] == pytest.approx([0.02, 0.02]) and r["se"] < 1e-9


def test_seed_spread_widens_the_interval():
    """A difference that one seed carries alone is not certain: resampling seeds widens the interval."""
    base = np.zeros(100)
    one_lucky = np.zeros((3, 100))
    one_lucky[0] = 0.3
    r = paired_diff(one_lucky, base)
    assert r["ci95"][0] == pytest.approx(0.0) and r["ci95"][1] == pytest.approx(0.3)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same problems"):
        paired_diff(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError, match="same seeds"):
        paired_diff(np.zeros((2, 5)), np.zeros((3, 5)))
