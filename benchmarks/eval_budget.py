"""How many samples per problem and how many problems an Avg@k estimate needs (not a test).

    python benchmarks/eval_budget.py data/eval/*.parquet [--out benchmarks/results/eval_budget.json]

From the per-sample records of the ``eval`` stage (``data/eval/<model>.parquet``: every problem, every sample),
per model and tier: the variance of the Avg@k estimate splits into a between-problem part (problems differ in
difficulty, sigma_b^2) and a within-problem part (a problem's k samples are Bernoulli draws, sigma_w^2):

    Var(Avg@k over P problems) = (sigma_b^2 + sigma_w^2 / k) / P

(unbiased moment estimates: sigma_w^2 = mean p_i (1 - p_i) k / (k - 1); sigma_b^2 = var(p_i) - sigma_w^2 / k).
For a fixed number of samples S = P k the variance is (k sigma_b^2 + sigma_w^2) / S, so once sigma_b^2 is not
small, samples are better spent on problems than on repeats. The script prints, per tier, the 95% half-width
of the current design and of designs with fewer samples per problem, at the same number of samples and at the
same problems, and checks the formula against a bootstrap that resamples problems and, within each, k of the
k_max samples.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def components(correct: np.ndarray) -> tuple[float, float]:
    """(sigma_b^2, sigma_w^2) of a [P, k] boolean array."""
    P, k = correct.shape
    p = correct.mean(axis=1)
    sw2 = float(np.mean(p * (1 - p)) * k / (k - 1))
    sb2 = max(0.0, float(np.var(p, ddof=1)) - sw2 / k)
    return sb2, sw2


def half_width(sb2: float, sw2: float, P: int, k: int) -> float:
    return Z95 * np.sqrt((sb2 + sw2 / k) / P)


def bootstrap_half_width(correct: np.ndarray, k: int, n_boot: int = 2000, seed: int = 0) -> float:
    """Half-width of the 95% percentile interval when each problem has k of its samples (drawn without
    replacement) and problems are resampled."""
    rng = np.random.default_rng(seed)
    P, K = correct.shape
    means = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, P, P)
        cols = np.argsort(rng.random((P, K)), axis=1)[:, :k]
        means[b] = correct[rows[:, None], cols].mean()
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float((hi - lo) / 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", nargs="+", help="per-sample records of the eval stage (data/eval/<model>.parquet)")
    ap.add_argument("--out", default="benchmarks/results/eval_budget.json")
    a = ap.parse_args()
    res = {}
    for path in a.samples:
        df = pd.read_parquet(path)
        df = df[~df["greedy"]]
        for tier, d in df.groupby("tier", sort=False):
            correct = d.pivot(index="pid", columns="sample", values="correct").to_numpy(dtype=bool)
            P, K = correct.shape
            sb2, sw2 = components(correct)
            row = {"problems": P, "k": K, "mean": float(correct.mean()), "sigma_b2": sb2, "sigma_w2": sw2,
                   "within_share_of_variance": (sw2 / K) / (sb2 + sw2 / K) if sb2 + sw2 > 0 else float("nan"),
                   "designs": []}
            for k in (1, 2, 4, 8, 16):
                if k > K:
                    continue
                row["designs"].append({
                    "k": k, "problems": P, "half_width": half_width(sb2, sw2, P, k),
                    "bootstrap_half_width": bootstrap_half_width(correct, k),
                    "same_samples_problems": P * K // k,
                    "same_samples_half_width": half_width(sb2, sw2, P * K // k, k)})
            res[f"{Path(path).stem}/{tier}"] = row
            print(f"{Path(path).stem:>10} {tier:<6} P={P} k={K} mean={row['mean']:.3f} sb2={sb2:.4f} sw2={sw2:.4f} "
                  f"within share={row['within_share_of_variance']:.2f}  " + "  ".join(
                      f"k={d['k']}: ±{d['half_width']:.3f} (boot ±{d['bootstrap_half_width']:.3f}; "
                      f"{d['same_samples_problems']} problems ±{d['same_samples_half_width']:.3f})"
                      for d in row["designs"]))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
