"""2-bit recovery as paired statistics: what PTQ keeps of full precision, what QAT wins back, and whether smaller
models suffer more (paper B's headline: PTQ breaks 2-bit reasoning models, QAT brings them back).

Pure numpy (no torch): the stage ``quant_w2@<reasoner>`` computes these from the per-problem results the
``quant_qat@<reasoner>-2`` stage wrote (every model sampled on the same test problems with the same seed), and the
report recomputes the cross-size comparison from the stages' outputs.

* :func:`ratio_of_means` a ratio ``mean(num) / mean(den)`` of two paired per-problem quantities with a two-level
  bootstrap interval (problems and seeds resampled together for numerator and denominator, as
  :func:`reasonlab.stats.paired_diff` does for a difference);
* :func:`kept_share` the share of the FP model's accuracy a model keeps, ``mean(model) / mean(fp)``;
* :func:`recovered_fraction` ``(QAT - PTQ) / (reference - PTQ)``: the share of PTQ's loss QAT wins back, against
  the FP model (QAT-KD's control) or the FP control (QAT-SFT's); undefined, and said so, when PTQ loses nothing
  measurable against the reference (the gap's interval reaches 0);
* :func:`kept_share_diff` the kept share of one reasoner minus another's on the same problems (seeds resampled
  independently: different models' training seeds are unrelated);
* :func:`two_bit_claims` the verdicts: PTQ breaks W2 (keeps under half of FP), QAT recovers at least half of the
  loss, smaller models keep less.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..stats import paired_diff

__all__ = ["BREAK_SHARE", "RECOVER_SHARE", "ratio_of_means", "kept_share", "recovered_fraction", "kept_share_diff",
           "two_bit_claims"]

#: "PTQ breaks the model": it keeps less than this share of the FP model's accuracy (the paper: 3.67 / 84.4 = 4%).
BREAK_SHARE = 0.5
#: "QAT recovers the model": it wins back at least this share of PTQ's loss (the paper: 64% at 2 bits).
RECOVER_SHARE = 0.5


def _matrix(x: Any, name: str) -> np.ndarray:
    a = np.atleast_2d(np.asarray(x, dtype=float))
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name}: expected [problems] or [seeds, problems] scores, got shape {np.shape(x)}")
    return a


def _pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: the two sides cover different problems ({a.shape[1]} vs {b.shape[1]})")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(f"{what}: seeds differ ({a.shape[0]} vs {b.shape[0]})")
    n = max(a.shape[0], b.shape[0])
    return np.broadcast_to(a, (n, a.shape[1])), np.broadcast_to(b, (n, b.shape[1]))


def _interval(values: np.ndarray, conf: float) -> list[float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    q = (1 - conf) / 2
    return [float(np.quantile(v, q)), float(np.quantile(v, 1 - q))]


def ratio_of_means(num: Any, den: Any, n_boot: int = 2000, seed: int = 0, conf: float = 0.95) -> dict:
    """``mean(num) / mean(den)`` with a percentile bootstrap interval over problems and seeds.

    ``num``, ``den``: per-problem values, ``[problems]`` or ``[seeds, problems]`` (a ``[problems]`` side is shared by
    every seed of the other). A resample whose denominator is 0 is left out of the interval (``n_undefined`` counts
    them). Returns ``mean``, ``ci95``, ``n_problems``, ``n_seeds``, ``n_undefined``.
    """
    a, b = _pair(_matrix(num, "num"), _matrix(den, "den"), "ratio_of_means")
    if b.mean() == 0:
        raise ValueError("ratio_of_means: the denominator's mean is 0")
    n_s, n_p = a.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_s, (n_boot, n_s)) if n_s > 1 else np.zeros((n_boot, 1), dtype=int)
    cols = rng.integers(0, n_p, (n_boot, n_p))
    # per-seed means of each resample's problems, then the resample's seeds: [n_boot]
    a_b = np.take_along_axis(a[:, cols].mean(axis=2).T, rows, axis=1).mean(axis=1)
    b_b = np.take_along_axis(b[:, cols].mean(axis=2).T, rows, axis=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(b_b != 0, a_b / b_b, np.nan)
    return {"mean": float(a.mean() / b.mean()), "ci95": _interval(boot, conf), "n_problems": int(n_p),
            "n_seeds": int(n_s), "n_undefined": int(np.isnan(boot).sum())}


def _pts(d: Mapping[str, Any]) -> dict:
    return {**d, "mean": 100 * d["mean"], "ci95": [100 * x for x in d["ci95"]], "se": 100 * d["se"]}


def kept_share(fp: Any, model: Any, n_boot: int = 2000) -> dict:
    """The share of the FP model's accuracy ``model`` keeps (``mean(model) / mean(fp)``, same problems), with its
    interval, and ``model_minus_fp`` (points). ``defined`` is False when the FP model solves nothing."""
    fp_m = _matrix(fp, "fp")
    diff = _pts(paired_diff(model, fp, n_boot=n_boot))
    if fp_m.mean() == 0:
        return {"defined": False, "why": "the FP model solves none of the problems", "model_minus_fp": diff}
    return {"defined": True, **ratio_of_means(model, fp, n_boot=n_boot), "model_minus_fp": diff}


def recovered_fraction(ptq: Any, qat: Any, reference: Any, n_boot: int = 2000) -> dict:
    """``(QAT - PTQ) / (reference - PTQ)``, paired over problems and seeds: the share of PTQ's loss QAT wins back.

    ``ptq``: the PTQ model QAT started from (``[problems]``); ``qat``: the QAT runs (``[seeds, problems]``);
    ``reference``: the FP model (``[problems]``, QAT-KD's control) or the FP controls (``[seeds, problems]``,
    QAT-SFT's). Always returns ``gap`` (reference - PTQ) and ``gain`` (QAT - PTQ) in points; ``defined`` is False,
    with ``why``, when the gap's interval reaches 0 (PTQ loses nothing measurable: the fraction would divide noise).
    """
    p, q, r = _matrix(ptq, "ptq"), _matrix(qat, "qat"), _matrix(reference, "reference")
    gap = _pts(paired_diff(r, p, n_boot=n_boot))
    gain = _pts(paired_diff(q, p, n_boot=n_boot))
    out: dict[str, Any] = {"gap": gap, "gain": gain}
    if gap["ci95"][0] <= 0:
        return {**out, "defined": False,
                "why": f"PTQ loses nothing measurable against the reference ({gap['mean']:+.1f} "
                       f"[{gap['ci95'][0]:+.1f}, {gap['ci95'][1]:+.1f}] points): there is nothing to recover"}
    qq, rr = _pair(q, r, "recovered_fraction")
    return {**out, "defined": True, **ratio_of_means(qq - p, rr - p, n_boot=n_boot)}


def kept_share_diff(fp_a: Any, model_a: Any, fp_b: Any, model_b: Any, n_boot: int = 2000, seed: int = 0,
                    conf: float = 0.95) -> dict:
    """Kept share of reasoner ``a`` minus reasoner ``b``'s, on the same problems (``[problems]`` FP scores,
    ``[problems]`` or ``[seeds, problems]`` model scores). Problems are resampled together for both, seeds of each
    side independently. Returns ``mean``, ``ci95``, ``n_problems``."""
    fa, fb = _matrix(fp_a, "fp_a"), _matrix(fp_b, "fp_b")
    ma, mb = _matrix(model_a, "model_a"), _matrix(model_b, "model_b")
    n_p = fa.shape[1]
    if {fb.shape[1], ma.shape[1], mb.shape[1]} != {n_p} or fa.shape[0] != 1 or fb.shape[0] != 1:
        raise ValueError("kept_share_diff: both reasoners must be scored on the same problems, FP as [problems]")
    if fa.mean() == 0 or fb.mean() == 0:
        raise ValueError("kept_share_diff: an FP model solves none of the problems")
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for i in range(n_boot):
        cols = rng.integers(0, n_p, n_p)
        sa = ma[rng.integers(0, ma.shape[0], ma.shape[0])][:, cols].mean()
        sb = mb[rng.integers(0, mb.shape[0], mb.shape[0])][:, cols].mean()
        da, db = fa[:, cols].mean(), fb[:, cols].mean()
        boot[i] = (sa / da if da else np.nan) - (sb / db if db else np.nan)
    return {"mean": float(ma.mean() / fa.mean() - mb.mean() / fb.mean()), "ci95": _interval(boot, conf),
            "n_problems": int(n_p)}


def _verdict(ci: Sequence[float], *, above: float | None = None, below: float | None = None) -> dict:
    lo, hi = ci
    if above is not None:
        return {"verdict": "holds" if lo > above else "does not hold", "opposite": bool(hi < above)}
    return {"verdict": "holds" if hi < below else "does not hold", "opposite": bool(lo > below)}


def two_bit_claims(stats: Mapping[str, Mapping[str, Any]], scores: Mapping[str, Mapping[str, Any]],
                   order: Sequence[str], n_boot: int = 2000) -> dict:
    """The 2-bit claims over the reasoners' ``quant_w2`` statistics (``stats[r]``: ``ptq_kept``, ``recovered``) and
    per-problem scores (``scores[r]``: ``fp``, ``ptq`` as ``[problems]``, ``qat`` as ``[seeds, problems]``, on the
    same problems for every reasoner), ``order`` from the smallest reasoner to the largest (by parameter count):

    * ``ptq_breaks[r]``: the PTQ init keeps less than :data:`BREAK_SHARE` of FP (its interval below it);
    * ``qat_recovers[r]``: QAT wins back at least :data:`RECOVER_SHARE` of PTQ's loss (interval above it); not
      testable where the fraction is undefined (PTQ loses nothing measurable);
    * ``smaller_suffers_more``: per adjacent pair (smaller, larger), the smaller's PTQ kept share minus the larger's
      (holds: interval below 0), with the QAT kept shares' difference beside it, and with three sizes or more the
      smallest against the largest too (key ``<smallest>_vs_<largest>``); not testable with one size or where an
      FP model solves nothing. Two sizes give one comparison, not a trend.
    """
    out: dict[str, Any] = {"ptq_breaks": {}, "qat_recovers": {}, "smaller_suffers_more": {}, "sizes": list(order)}
    for r in order:
        k, rec = stats[r]["ptq_kept"], stats[r]["recovered"]
        out["ptq_breaks"][r] = ({**_verdict(k["ci95"], below=BREAK_SHARE), "share": k} if k.get("defined")
                                else {"verdict": "not testable here", "why": k.get("why", "")})
        untestable = {"verdict": "not testable here", "why": rec.get("why", "")}
        out["qat_recovers"][r] = ({**_verdict(rec["ci95"], above=RECOVER_SHARE), "fraction": rec}
                                  if rec.get("defined") else untestable)
    pairs = list(zip(order, order[1:])) + ([(order[0], order[-1])] if len(order) >= 3 else [])
    for small, large in pairs:
        a, b = scores[small], scores[large]
        key = f"{small}_vs_{large}"
        if not (np.mean(a["fp"]) > 0 and np.mean(b["fp"]) > 0):
            out["smaller_suffers_more"][key] = {"verdict": "not testable here", "why": "an FP model solves nothing"}
            continue
        ptq = kept_share_diff(a["fp"], a["ptq"], b["fp"], b["ptq"], n_boot=n_boot)
        qat = kept_share_diff(a["fp"], a["qat"], b["fp"], b["qat"], n_boot=n_boot)
        out["smaller_suffers_more"][key] = {**_verdict(ptq["ci95"], below=0.0), "ptq_kept_diff": ptq,
                                            "qat_kept_diff": qat}
    if len(order) < 2:
        out["smaller_suffers_more"]["-"] = {"verdict": "not testable here", "why": "one reasoner size"}
    return out
