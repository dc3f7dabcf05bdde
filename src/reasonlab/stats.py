"""Paired differences between two conditions measured on the same problems (and, for trained models, seeds).

A student and its base model (or two students) are sampled on the same problems with the same sampling seed
(common random numbers), so their difference is read per problem: ``d[s, p] = a[s, p] - b[s, p]``, where ``s``
is a training seed and ``p`` a problem. The interval resamples problems *and* seeds (a two-level percentile
bootstrap): both are draws from a larger population, and a difference that holds for one seed's students only,
or for a few problems only, must not look certain. With one seed it is the usual bootstrap over problems.
"""

from __future__ import annotations

import numpy as np

__all__ = ["paired_diff", "rank_trend", "ranks", "spearman"]


def paired_diff(a, b, n_boot: int = 2000, seed: int = 0, conf: float = 0.95) -> dict:
    """Mean of ``a - b`` with its bootstrap interval and standard error.

    ``a``, ``b``: per-problem scores, ``[problems]`` or ``[seeds, problems]``; a ``[problems]`` side is shared
    by every seed of the other (a base model has no training seed). Returns ``mean``, ``ci95`` (lo, hi), ``se``
    (the bootstrap sd), ``n_problems``, ``n_seeds``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
    if a2.shape[-1] != b2.shape[-1]:
        raise ValueError(f"paired_diff: a and b must cover the same problems, got {a.shape} and {b.shape}")
    if a2.ndim != 2 or b2.ndim != 2 or (a2.shape[0] != b2.shape[0] and 1 not in (a2.shape[0], b2.shape[0])):
        raise ValueError(f"paired_diff: a and b must be [problems] or [seeds, problems] with the same seeds, "
                         f"got {a.shape} and {b.shape}")
    d = a2 - b2
    if d.size == 0:
        raise ValueError("paired_diff of no problems")
    n_s, n_p = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(n_boot):
        rows = rng.integers(0, n_s, n_s) if n_s > 1 else np.zeros(1, dtype=int)
        cols = rng.integers(0, n_p, n_p)
        means[i] = d[np.ix_(rows, cols)].mean()
    q = (1 - conf) / 2
    return {"mean": float(d.mean()), "ci95": [float(np.quantile(means, q)), float(np.quantile(means, 1 - q))],
            "se": float(means.std(ddof=1)), "n_problems": int(n_p), "n_seeds": int(n_s)}


def ranks(x) -> np.ndarray:
    """1-based ranks of ``x`` with ties given their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):  # average ranks over ties
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties; ``nan`` when either side is constant or has < 2
    values)."""
    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def rank_trend(x, scores, n_boot: int = 2000, seed: int = 0, conf: float = 0.95) -> dict:
    """Spearman's correlation between ``x`` (one value per condition, e.g. a training set's measured drift) and
    the conditions' mean scores, with a bootstrap interval over problems and seeds.

    ``scores``: one ``[seeds, problems]`` array per condition, every condition on the same problems and seeds
    (a student of each condition per training seed, all sampled on the same problems), so a resample draws the
    same seeds and problems for every condition. Returns ``rho`` (on the full data), ``ci95``, ``means`` (per
    condition), ``n_problems``, ``n_seeds`` and ``undefined_share`` (resamples where the means tie throughout,
    left out of the interval).
    """
    mats = [np.atleast_2d(np.asarray(m, dtype=float)) for m in scores]
    if len(mats) != len(x):
        raise ValueError(f"rank_trend: {len(x)} x values for {len(mats)} conditions")
    if len({m.shape for m in mats}) != 1:
        raise ValueError(f"rank_trend: every condition needs the same [seeds, problems], got {[m.shape for m in mats]}")
    cube = np.stack(mats)  # [conditions, seeds, problems]
    _, n_s, n_p = cube.shape
    if n_p == 0:
        raise ValueError("rank_trend of no problems")
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(n_boot):
        rows = rng.integers(0, n_s, n_s)
        cols = rng.integers(0, n_p, n_p)
        rho = spearman(x, cube[:, rows][:, :, cols].mean(axis=(1, 2)))
        if rho == rho:
            rhos.append(rho)
    q = (1 - conf) / 2
    means = cube.mean(axis=(1, 2))
    ci = [float(np.quantile(rhos, q)), float(np.quantile(rhos, 1 - q))] if rhos else [float("nan")] * 2
    return {"rho": spearman(x, means), "ci95": ci, "means": [float(m) for m in means], "n_problems": int(n_p),
            "n_seeds": int(n_s), "undefined_share": 1 - len(rhos) / n_boot}
