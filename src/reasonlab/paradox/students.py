"""The students of the paradox: every (set, objective, seed) fine-tune of one family, and their summary."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluate import mean_sd
from ..stats import paired_diff
from .config import ParadoxConfig


def students(pc: ParadoxConfig) -> list[tuple[str, str, int]]:
    """Every ``(set, objective, seed)`` of one family, in run order."""
    ft = pc.finetune
    return [(s, o, seed) for s in ft.sets for o in ft.objectives for seed in ft.seeds]


def student_name(set_name: str, objective: str, seed: int) -> str:
    return f"{set_name}-{objective}-s{seed}"


def aggregate_students(records: Sequence[Mapping], tiers: Sequence[str]) -> dict:
    """``{set: {objective: {"avg", "sd", "per_seed", <tier>, <tier>_sd}}}``: mean and sd over seeds.

    ``records``: one per student with ``set, objective, seed, avg_at_k`` and ``<tier>.avg_at_k``.
    """
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for r in records:
        groups.setdefault((r["set"], r["objective"]), []).append(r)
    out: dict[str, dict] = {}
    for (s, o), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        m, sd = mean_sd([r["avg_at_k"] for r in rs])
        d = {"avg": m, "sd": sd, "per_seed": [r["avg_at_k"] for r in rs], "seeds": [r["seed"] for r in rs]}
        for t in tiers:
            tm, tsd = mean_sd([r[t]["avg_at_k"] for r in rs])
            d[t], d[f"{t}_sd"] = tm, tsd
        out.setdefault(s, {})[o] = d
    return out


# --- per-problem results and the paired statistics on them (issue 24) ---------------------------------------------

UTILITIES = {"acc": "answer Avg@k", "valid": "fully valid solutions"}


def problem_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (``set, objective, seed``) row, per (``tier, pid``) column: the share of samples with the right answer
    (``acc``) and of fully valid ones (``valid``: right answer and every step valid), as a two-level column index
    ``(utility, (tier, pid))``. ``rows``: the per-sample rows of :func:`reasonlab.evaluate.evaluate_suite` (``rows=True``) with
    ``set, objective, seed`` columns (the base model: set ``base``, objective ``-``, seed ``-1``)."""
    r = rows.assign(acc=rows["correct"].astype(float),
                    valid=(rows["correct"] & (rows["step_validity"] >= 1.0)).astype(float))
    g = r.groupby(["set", "objective", "seed", "tier", "pid"])[list(UTILITIES)].mean()
    return g.unstack(["tier", "pid"])


def score_matrix(scores: pd.DataFrame, set_name: str, objective: str, utility: str) -> np.ndarray:
    """``[seeds, problems]`` of one set and objective (seeds in order)."""
    sub = scores.loc[(set_name, objective)][utility]
    return sub.sort_index().to_numpy(dtype=float)


def paired_differences(scores: pd.DataFrame, objectives: Sequence[str], reference: str = "slm_rft",
                       base: bool = True, n_boot: int = 2000, seed: int = 0) -> dict:
    """``{objective: {other: {utility: paired_diff}}}``: ``reference`` minus every other set, and (``base``)
    ``reference`` minus the base model, paired over problems and training seeds
    (:func:`reasonlab.stats.paired_diff`). Sets missing from ``scores`` are left out."""
    sets = [s for s in dict.fromkeys(scores.index.get_level_values("set")) if s not in (reference, "base")]
    out: dict = {}
    for o in objectives:
        if (reference, o) not in scores.index.droplevel("seed"):
            continue
        d = {}
        for other in sets + (["base"] if base else []):
            key = ("base", "-") if other == "base" else (other, o)
            if key not in scores.index.droplevel("seed"):
                continue
            d[other] = {u: paired_diff(score_matrix(scores, reference, o, u), score_matrix(scores, *key, u),
                                       n_boot=n_boot, seed=seed) for u in UTILITIES}
        out[o] = d
    return out


def precondition(diffs: Mapping, z: float = 2.0) -> dict:
    """Per objective: does SLM-RFT improve its base model's answer Avg@k by more than ``z`` standard errors
    (paired over problems and seeds)? ``{objective: {"slm_rft_minus_base": diff, "met": bool}}``; the paradox's
    utility claims are "not testable here" where it is not met (fine-tuning on the model's own traces must help
    at all before one can ask which data helps most)."""
    out = {}
    for o, d in diffs.items():
        if "base" in d:
            b = d["base"]["acc"]
            out[o] = {"slm_rft_minus_base": d["base"], "met": bool(b["mean"] > z * b["se"]), "z": z}
    return out
