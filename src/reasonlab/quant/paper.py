"""Paper B's published figures beside ours, as scale-free quantities.

Paper B (*What Makes Low-Bit QAT Work for Reasoning LLMs?*, arXiv 2601.14888) has no public code, and the only
numbers the design card has are **secondary and unverified** (third-party notes, partly inconsistent; see
``docs/design.md``, "The papers' published numbers"). Its models (Qwen3-0.6B, R1-Distill-Qwen-1.5B) and benchmarks
(MATH-500) are not ours, so absolute accuracies cannot be compared. What can be put side by side are ratios and signs:

* the share of full-precision accuracy a PTQ (GPTQ) model keeps at a bit width;
* the share of GPTQ's loss that QAT (from GPTQ) wins back, ``(QAT - GPTQ) / (FP - GPTQ)``;
* the sign and size of KD - SFT (points; the paper's SFT data come from a stronger writer, our source ``oracle``);
* RQ2's direction (PTQ init better than RTN init), for which the notes give no number.

Ours come from the QAT stages' paired statistics (``rq1_sources``: the GPTQ init's and QAT-KD's difference from
the FP model on the same test problems, seeds averaged; ``rq2``). A recovery share is "not testable here" where
the GPTQ init does not lose accuracy beyond its interval (nothing to recover). Nothing here is hard-coded but
the paper's figures below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["PAPER_B", "PAPER_B_SOURCE", "paper_rows", "paper_comparison"]

PAPER_B_SOURCE = "unverified (third-party notes, docs/design.md)"

#: The design card's secondary figures of paper B, in percent (accuracy) as the notes give them.
PAPER_B: dict[str, dict[str, Any]] = {
    "w3_qwen3": {"setting": "Qwen3-0.6B W3G128, MATH-500", "bits": 3, "fp": 74.8, "gptq": 26.6, "qat": 56.6},
    "w3_r1": {"setting": "R1-Distill-Qwen-1.5B W3G128, average of the benchmarks", "bits": 3,
              "gptq_sft": 55.27, "gptq_kd": 56.45, "gptq_kd_grpo": 58.51},
    "w2_r1": {"setting": "R1-Distill-Qwen-1.5B 2-bit, MATH-500", "bits": 2, "fp": 84.4, "gptq": 3.67, "qat": 55.0},
    "abstract": {"setting": "abstract: Qwen3-0.6B MATH-500, QAT over GPTQ (points)", "gain_over_gptq": 44.53},
}


def paper_rows() -> pd.DataFrame:
    """The paper's side: one row per (quantity, bits) with its value and the setting it was measured in."""
    w3, r1, w2 = PAPER_B["w3_qwen3"], PAPER_B["w3_r1"], PAPER_B["w2_r1"]
    rows = [
        ("GPTQ keeps of FP accuracy (%)", 3, 100 * w3["gptq"] / w3["fp"], w3["setting"]),
        ("GPTQ keeps of FP accuracy (%)", 2, 100 * w2["gptq"] / w2["fp"], w2["setting"]),
        ("QAT wins back of GPTQ's loss (%)", 3, 100 * (w3["qat"] - w3["gptq"]) / (w3["fp"] - w3["gptq"]),
         w3["setting"] + f"; the abstract's +{PAPER_B['abstract']['gain_over_gptq']:.2f} over GPTQ would be "
         f"{100 * PAPER_B['abstract']['gain_over_gptq'] / (w3['fp'] - w3['gptq']):.0f}% (inconsistent)"),
        ("QAT wins back of GPTQ's loss (%)", 2, 100 * (w2["qat"] - w2["gptq"]) / (w2["fp"] - w2["gptq"]),
         w2["setting"]),
        ("KD - SFT (points)", 3, r1["gptq_kd"] - r1["gptq_sft"],
         r1["setting"] + "; SFT data: OpenR1-Math, a stronger writer's traces (our source oracle)"),
        ("KD - SFT (points)", 2, float("nan"), "no figure in the notes"),
        ("PTQ (GPTQ) init beats RTN init after the same budget", None, float("nan"),
         "reported as a finding; no figure in the notes"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "bits", "paper", "paper_setting"])


def _fmt_ci(d: Mapping[str, Any], scale: float = 1.0) -> str:
    return f"{scale * d['mean']:+.1f} [{scale * d['ci95'][0]:+.1f}, {scale * d['ci95'][1]:+.1f}]"


def _ours(quantity: str, bits: int | None, results: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Our value of one quantity, one string per (reasoner[, source or init]) block that has it."""
    out = []
    for d in sorted(results.get("qat", {}).values(), key=lambda d: (d["reasoner"], -int(d["bits"]))):
        if bits is not None and int(d["bits"]) != bits:
            continue
        who = f"{d['reasoner']} W{int(d['bits'])}"
        st = d.get("rq1_sources")
        if quantity.startswith("PTQ (GPTQ) init"):
            rq2 = d.get("rq2")
            for obj, o in (rq2 or {}).get("objectives", {}).items():
                c = o.get(f"vs_{rq2['baseline']}", {}).get("gptq")
                if c:
                    eh = c["ends_higher"]
                    ci = f" {_fmt_ci(eh['diff'], 100)}" if "diff" in eh else ""
                    out.append(f"{who} {obj.upper()} vs {rq2['baseline'].upper()}:{ci} {eh['verdict']}")
            continue
        if not st:
            continue
        pre = st["precondition"]
        init = pre["init_minus_fp"]
        fp = d["fp"]["avg_at_k"] * 100 if isinstance(d.get("fp"), Mapping) else float("nan")
        if quantity.startswith("GPTQ keeps"):
            out.append(f"{who}: {100 * (fp + init['mean']) / fp:.0f}% (GPTQ - FP {_fmt_ci(init)})"
                       if fp > 0 else f"{who}: FP at 0")
        elif quantity.startswith("QAT wins back"):
            for source, s in st["sources"].items():
                if not pre["met"]:
                    out.append(f"{who} {source}: not testable here (GPTQ - FP {_fmt_ci(init)})")
                else:
                    share = 100 * (1 - s["kd_minus_fp"]["mean"] / init["mean"])
                    out.append(f"{who} {source}: {share:.0f}% (KD - FP {_fmt_ci(s['kd_minus_fp'])})")
        elif quantity.startswith("KD - SFT"):
            for source, s in st["sources"].items():
                v = s.get("kd_beats_sft") or {}
                if "diff" in v:
                    out.append(f"{who} {source}: {_fmt_ci(v['diff'])} {v['verdict']}")
    return out


def paper_comparison(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """Paper B's figures beside ours: :func:`paper_rows` plus ``ours`` (``"; "``-joined blocks, or ``–``) and
    ``paper_status`` (:data:`PAPER_B_SOURCE` where the paper gives a number). ``results`` is
    :func:`reasonlab.quant.tables.load_results`'s output."""
    t = paper_rows()
    t["paper_status"] = [PAPER_B_SOURCE if pd.notna(v) else "–" for v in t["paper"]]
    t["ours"] = ["; ".join(_ours(q, None if pd.isna(b) else int(b), results)) or "–"
                 for q, b in zip(t["quantity"], t["bits"])]
    t["bits"] = [f"W{int(b)}" if pd.notna(b) else "–" for b in t["bits"]]
    return t[["quantity", "bits", "paper", "paper_status", "paper_setting", "ours"]]
