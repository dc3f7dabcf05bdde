"""Paired differences between two conditions measured on the same problems (and, for trained models, seeds).

A student and its base model (or two students) are sampled on the same problems with the same sampling seed
(common random numbers), so their difference is read per problem: ``d[s, p] = a[s, p] - b[s, p]``, where ``s``
is a training seed and ``p`` a problem. The interval resamples problems *and* seeds (a two-level percentile
bootstrap): both are draws from a larger population, and a difference that holds for one seed's students only,
or for a few problems only, must not look certain. With one seed it is the usual bootstrap over problems.
"""

from __future__ import annotations

import numpy as np

__all__ = ["paired_diff"]


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
