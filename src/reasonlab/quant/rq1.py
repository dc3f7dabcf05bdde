"""RQ1 (QAT objective) as paired statistics: KD vs SFT per training-data source, and each against its control.

Every model of a ``quant_qat@<reasoner>-<bits>`` stage is sampled on the same test problems with the same seed
(common random numbers), so two conditions are compared problem by problem (:func:`reasonlab.stats.paired_diff`,
over problems and training seeds):

* :func:`problem_shares` (from :mod:`.calib_align`) the share of a model's correct samples per problem, from
  :func:`reasonlab.evaluate.evaluate_suite`'s rows, in suite order;
* :func:`rq1_statistics` per source: QAT-KD minus QAT-SFT (the paper's claim: KD wins), each QAT objective minus
  its full-precision control (QAT-SFT: the FP model fine-tuned the same way; QAT-KD: the FP model itself), and
  what fine-tuning on the source does to the FP model; the precondition (the PTQ init loses accuracy against FP,
  so there is something to recover) decides whether the claim is testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..stats import paired_diff
from .calib_align import claim, problem_shares

__all__ = ["problem_keys", "problem_shares", "rq1_statistics"]


def problem_keys(suite: Mapping[str, Sequence[Any]]) -> list[str]:
    """``tier:pid`` of every problem of ``suite``, in suite order (the columns of :func:`problem_shares`)."""
    return [f"{tier}:{it.pid}" for tier, items in suite.items() for it in items]


def rq1_statistics(fp: Sequence[float], init: Sequence[float], runs: Sequence[Mapping[str, Any]],
                   controls: Sequence[Mapping[str, Any]] = (), n_boot: int = 2000) -> dict:
    """RQ1 of one (reasoner, bits): per source, paired differences over problems and seeds, in points.

    ``fp``, ``init``: per-problem shares of the FP model and of the QAT init (PTQ alone, the student at step 0);
    ``runs``: the RQ1 runs, each ``{"objective", "source", "seed", "per_problem"}``; ``controls``: the FP
    controls, ``{"objective": "sft", "source", "seed", "per_problem"}``. Seeds pair by value (a seed's runs and
    control see the same batches).

    Returns ``precondition`` (``init_minus_fp`` and ``met``: its interval lies below 0) and ``sources``: per source
    ``kd_minus_sft`` with the verdict of "KD beats SFT" (holds: interval above 0; ``opposite``: below 0; not
    testable here when the precondition fails), ``sft_minus_fp``, ``kd_minus_fp`` (KD against its control),
    and with controls ``sft_minus_control`` and ``control_minus_fp``; the means (``qat_sft``, ``qat_kd``,
    ``control_sft``) in points.
    """
    fp_v, init_v = np.asarray(fp, float), np.asarray(init, float)
    pts = lambda d: {**d, "mean": 100 * d["mean"], "ci95": [100 * x for x in d["ci95"]], "se": 100 * d["se"]}
    pre = pts(paired_diff(init_v, fp_v, n_boot=n_boot))
    met = pre["ci95"][1] < 0
    why = (f"the QAT init loses nothing measurable against FP ({pre['mean']:+.1f} "
           f"[{pre['ci95'][0]:+.1f}, {pre['ci95'][1]:+.1f}] points): there is nothing to recover")
    out: dict[str, Any] = {"precondition": {"init_minus_fp": pre, "met": bool(met)}, "sources": {}}

    def matrix(rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> np.ndarray:
        by_seed = {int(r["seed"]): r["per_problem"] for r in rows}
        return np.array([by_seed[s] for s in seeds], dtype=float)

    for source in dict.fromkeys(r["source"] for r in runs):
        mine = [r for r in runs if r["source"] == source]
        sft = [r for r in mine if r["objective"] == "sft"]
        kd = [r for r in mine if r["objective"] == "kd"]
        ctl = [c for c in controls if c["source"] == source and c["objective"] == "sft"]
        s: dict[str, Any] = {}
        if sft:
            seeds = sorted(int(r["seed"]) for r in sft)
            a = matrix(sft, seeds)
            s["qat_sft"] = 100 * float(a.mean())
            s["sft_minus_fp"] = pts(paired_diff(a, fp_v, n_boot=n_boot))
            if ctl and sorted(int(c["seed"]) for c in ctl) == seeds:
                c = matrix(ctl, seeds)
                s["control_sft"] = 100 * float(c.mean())
                s["sft_minus_control"] = pts(paired_diff(a, c, n_boot=n_boot))
                s["control_minus_fp"] = pts(paired_diff(c, fp_v, n_boot=n_boot))
        if kd:
            seeds_kd = sorted(int(r["seed"]) for r in kd)
            b = matrix(kd, seeds_kd)
            s["qat_kd"] = 100 * float(b.mean())
            s["kd_minus_fp"] = pts(paired_diff(b, fp_v, n_boot=n_boot))
            if sft and seeds_kd == seeds:
                s["kd_beats_sft"] = claim(pts(paired_diff(b, a, n_boot=n_boot)), met, why)
        out["sources"][source] = s
    return out
