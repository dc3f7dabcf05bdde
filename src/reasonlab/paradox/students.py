"""The students of the paradox: every (set, objective, seed) fine-tune of one family, and their summary."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..evaluate import mean_sd
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
