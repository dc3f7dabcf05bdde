"""Tables of the paradox report (``notebooks/paradox.py``), built from the stages' metrics.

Pure functions of the metric dicts (tested on fixed inputs), no torch:

* :func:`main_table` the paper's main table: per family and averaged over families, for each of the
  five sets the RM score (95% CI), step validity and Avg@k after SFT and after DFT (mean and sd
  over seeds; the family average is taken per seed, then mean and sd over seeds);
* :func:`format_main_table` the same as display strings (``12.3 ± 1.1``);
* :func:`ordering_checks` / :func:`ordering_summary` whether the paper's orderings hold
  (RM: Synthesized > Refined > RFT; utility: Style-Aligned > RFT > Refined > Synthesized), pair by pair;
* :func:`paper_comparison` the paper's Table 1 beside ours (values and ranks per column);
* :func:`utilities_by_set` both utilities (answer Avg@k, fully valid solutions) per set from per-sample rows;
* :func:`cost_table` the adaptation-cost view: perplexity of the base model per set (global, Q1-Q4),
  token shift and utility.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .config import SET_LABELS as LABELS
from .config import SETS
from ..stats import spearman

MEAN = "mean"  # the family column value of the rows averaged over families
RM_ORDER = ("oracle_synth", "oracle_refined", "slm_rft")  # the paper: perceived quality, highest first
UTILITY_ORDER = ("style_aligned", "slm_rft", "oracle_refined", "oracle_synth")  # the paper: utility, highest first
QUARTERS = ("q1", "q2", "q3", "q4")


def load_family_metrics(metrics_dir: str | Path, families: Sequence[str]) -> tuple[dict, dict]:
    """``(score, finetune)``: ``{family: metrics}`` from ``metrics_dir/{score,finetune}/<family>.json``."""
    metrics_dir = Path(metrics_dir)
    out: tuple[dict, dict] = ({}, {})
    for part, d in zip(("score", "finetune"), out):
        for f in families:
            path = metrics_dir / part / f"{f}.json"
            if not path.exists():
                raise FileNotFoundError(f"missing metrics file: {path} (run paradox_{part}@{f})")
            d[f] = json.loads(path.read_text())
    return out


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else float("nan")


def _mean_sd(xs) -> tuple[float, float]:
    xs = np.asarray(xs, dtype=float)
    if xs.size == 0:
        return float("nan"), float("nan")
    return float(xs.mean()), float(xs.std(ddof=1)) if xs.size > 1 else 0.0


def _set_rows(score: Mapping[str, Mapping], finetune: Mapping[str, Mapping]):
    """``(family, set, score metrics of the set, fine-tuning metrics of the set by objective)`` in table order."""
    for fam in score:
        sc, ft = score[fam].get("sets", {}), finetune.get(fam, {}).get("sets", {})
        for s in SETS:
            if s in sc:
                yield fam, s, sc[s], ft.get(s, {})


def _paired_se(diff: Mapping | None) -> float:
    """Standard error from a paired difference's 95 % interval (``{"mean", "ci95"}``); NaN when absent."""
    if not diff or diff.get("ci95") is None:
        return float("nan")
    lo, hi = diff["ci95"]
    return (float(hi) - float(lo)) / 2 / 1.96


def main_table(score: Mapping[str, Mapping], finetune: Mapping[str, Mapping],
               objectives: Sequence[str] = ("sft", "dft")) -> pd.DataFrame:
    """One row per (family, set), then the ``mean`` rows (averaged over the families that have the set).

    Columns: ``family, set, label, n_ids, rm, rm_lo, rm_hi, rm_paired_se`` (standard error of the set's paired
    RM difference from SLM-RFT over the same problems; NaN where not measured), ``step_validity`` and, per objective,
    ``<obj>_avg, <obj>_sd`` (Avg@k in %, mean and sd over seeds), ``<obj>_seeds`` (per-seed values),
    ``<obj>_rft_se`` (standard error of SLM-RFT minus the set, paired over problems and seeds; NaN where not
    measured) and the family's precondition: ``<obj>_base_diff``, ``<obj>_base_se`` (SLM-RFT minus the base
    model, paired) and ``<obj>_precondition`` (True / False; NaN where not measured).
    Families whose sets are empty contribute no row.
    """
    rows = []
    for fam, s, m, ft in _set_rows(score, finetune):
        r = {"family": fam, "set": s, "label": LABELS[s], "n_ids": score[fam].get("n_ids"),
             "rm": m["rm_score"], "rm_lo": m["rm_ci95"][0], "rm_hi": m["rm_ci95"][1],
             "rm_paired_se": _paired_se(m.get("rm_minus_slm_rft")), "step_validity": 100 * m["step_validity"]}
        fm = finetune.get(fam, {})
        for o in objectives:
            d = ft.get(o)
            per_seed = dict(zip(d["seeds"], d["per_seed"])) if d else {}
            mean, sd = _mean_sd(list(per_seed.values()))
            vs = fm.get("slm_rft_minus", {}).get(o, {}).get(s, {}).get("acc")
            pre = fm.get("precondition", {}).get(o)
            r.update({f"{o}_avg": 100 * mean, f"{o}_sd": 100 * sd,
                      f"{o}_seeds": {k: 100 * v for k, v in per_seed.items()},
                      f"{o}_rft_se": 100 * vs["se"] if vs else math.nan,
                      f"{o}_base_diff": 100 * pre["slm_rft_minus_base"]["acc"]["mean"] if pre else math.nan,
                      f"{o}_base_se": 100 * pre["slm_rft_minus_base"]["acc"]["se"] if pre else math.nan,
                      f"{o}_precondition": pre["met"] if pre else math.nan})
        rows.append(r)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    means = []
    for s in SETS:
        sub = df[df["set"] == s]
        if sub.empty:
            continue
        # the mean's CI from the families' (independent) CIs: half-width sqrt(sum hw_f^2) / n_families
        hw = float(np.sqrt(np.sum(((sub["rm_hi"] - sub["rm_lo"]) / 2) ** 2)) / len(sub))
        rm = _mean(sub["rm"])
        r = {"family": MEAN, "set": s, "label": LABELS[s], "n_ids": int(sub["n_ids"].sum()), "rm": rm,
             "rm_lo": rm - hw, "rm_hi": rm + hw,
             "rm_paired_se": float(np.sqrt(np.sum(sub["rm_paired_se"] ** 2))) / len(sub),
             "step_validity": _mean(sub["step_validity"])}
        for o in objectives:
            per = list(sub[f"{o}_seeds"])
            seeds = sorted(set.intersection(*(set(p) for p in per))) if per and all(per) else []
            by_seed = {k: float(np.mean([p[k] for p in per])) for k in seeds}
            m, sd = _mean_sd(list(by_seed.values()))
            pre = list(sub[f"{o}_precondition"])
            r.update({f"{o}_avg": m, f"{o}_sd": sd, f"{o}_seeds": by_seed,
                      f"{o}_rft_se": float(np.sqrt(np.sum(sub[f"{o}_rft_se"] ** 2))) / len(sub),
                      f"{o}_base_diff": _mean(sub[f"{o}_base_diff"]),
                      f"{o}_base_se": float(np.sqrt(np.sum(sub[f"{o}_base_se"] ** 2))) / len(sub),
                      f"{o}_precondition": all(pre) if all(isinstance(p, bool) for p in pre) else math.nan})
        means.append(r)
    return pd.concat([df, pd.DataFrame(means)], ignore_index=True)


def _pm(m: float, sd: float, digits: int = 1) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "n/a"
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def format_main_table(df: pd.DataFrame, objectives: Sequence[str] = ("sft", "dft"), k: int | None = None) -> pd.DataFrame:
    """Display strings: RM score with its 95% CI, step validity (%), ``<OBJ> Avg@k`` as ``mean ± sd``."""
    if df.empty:
        return pd.DataFrame()
    at = f"Avg@{k}" if k else "Avg@k"
    out = pd.DataFrame({
        "family": df["family"],
        "set": df["label"],
        "RM score": [f"{r.rm:.2f}" + ("" if math.isnan(r.rm_lo) else f" [{r.rm_lo:.2f}, {r.rm_hi:.2f}]")
                     for r in df.itertuples()],
        "step validity (%)": [f"{v:.1f}" for v in df["step_validity"]],
    })
    for o in objectives:
        out[f"{o.upper()} {at} (%)"] = [_pm(m, sd) for m, sd in zip(df[f"{o}_avg"], df[f"{o}_sd"])]
    return out


CHECK_COLUMNS = ["family", "metric", "higher", "lower", "higher_value", "lower_value", "diff", "se", "holds", "clear",
                 "note", "testable", "verdict"]
NOT_TESTABLE = "not testable here"


def _se(sd: float, n: int) -> float:
    return sd / math.sqrt(n) if n > 1 and not math.isnan(sd) else float("nan")


def _testable(sub: pd.DataFrame, col: str) -> tuple[bool, bool]:
    """``(measured, testable)`` of one family's metric column: a utility metric (``<obj>_avg``) is testable when
    SLM-RFT clearly improves its base model under that objective (``<obj>_precondition`` of the SLM-RFT row);
    the RM score, and metrics whose precondition was not measured (older metrics), are testable."""
    key = f"{col[: -len('_avg')]}_precondition"
    if col == "rm" or "slm_rft" not in sub.index or key not in sub.columns:
        return False, True
    pre = sub.at["slm_rft", key]
    measured = isinstance(pre, (bool, np.bool_))  # NaN: not measured
    return measured, not measured or bool(pre)


def chain_verdict(holds: Sequence[bool], clear: Sequence[bool], testable: bool) -> str:
    """One ordering chain's verdict: ``not testable here`` when its precondition failed, ``holds`` when every
    adjacent pair is in the paper's order *and* outside the noise, else ``does not hold`` (a chain in order on
    point estimates with a pair within noise could not have been refuted, so it does not count as holding)."""
    if not testable:
        return NOT_TESTABLE
    return "holds" if all(bool(h) and bool(c) for h, c in zip(holds, clear, strict=True)) else "does not hold"


def ordering_checks(df: pd.DataFrame, objectives: Sequence[str] = ("sft", "dft"), z: float = 2.0) -> pd.DataFrame:
    """Every adjacent pair of the paper's orderings, per family (and ``mean``): does ``higher`` beat ``lower``?

    Rows: :data:`CHECK_COLUMNS`. ``holds``: strictly greater. ``diff`` = higher - lower and ``se`` its
    standard error (:func:`_pair_se`: paired over problems (and seeds) where one side is SLM-RFT and it was
    measured, else from the sets' CIs (RM) or over seeds, unpaired (Avg@k)). ``clear``: ``|diff| > z * se``,
    i.e. the comparison (either way) is larger than the noise; ``note``: "tie" (equal values), "within noise" (not
    ``clear``, with a known se) or "". ``testable`` and ``verdict`` belong to the whole
    chain (the same on each of its rows): :func:`chain_verdict`, with a utility chain not testable where SLM-RFT
    does not clearly improve its base model. A pair with a missing value is left out.
    """
    chains = [("RM score", "rm", RM_ORDER)] + [(f"{o.upper()} Avg@k", f"{o}_avg", UTILITY_ORDER) for o in objectives]
    rows = []
    if df.empty:
        return pd.DataFrame(columns=CHECK_COLUMNS)
    for fam in dict.fromkeys(df["family"]):
        sub = df[df["family"] == fam].set_index("set")
        for metric, col, chain in chains:
            pairs = []
            for a, b in zip(chain, chain[1:]):
                if a not in sub.index or b not in sub.index:
                    continue
                va, vb = float(sub.at[a, col]), float(sub.at[b, col])
                if math.isnan(va) or math.isnan(vb):
                    continue
                se = _pair_se(sub, a, b, col)
                diff = va - vb
                clear = bool(not math.isnan(se) and abs(diff) > z * se)
                note = "tie" if va == vb else "" if clear or math.isnan(se) else "within noise"
                pairs.append({"family": fam, "metric": metric, "higher": LABELS[a], "lower": LABELS[b],
                              "higher_value": va, "lower_value": vb, "diff": diff, "se": se, "holds": va > vb,
                              "clear": clear, "note": note})
            if not pairs:
                continue
            testable = _testable(sub, col)[1]
            verdict = chain_verdict([p["holds"] for p in pairs], [p["clear"] for p in pairs], testable)
            rows += [{**p, "testable": testable, "verdict": verdict} for p in pairs]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def ordering_summary(checks: pd.DataFrame, k: int | None = None) -> str:
    """Markdown: per family and metric, the chain's verdict (:func:`chain_verdict`, read from ``checks``) and the
    pairs that keep it from holding: out of order, "(within noise)" or "(tie)"."""
    if checks.empty:
        return "No ordering can be checked: no set has scores and utilities yet."
    at = f"Avg@{k}" if k else "Avg@k"

    def note(r) -> str:
        return f" ({r.note})" if r.note else ""

    def pair(r) -> str:
        if r.holds:
            return f"{r.higher} > {r.lower}{note(r)}"
        return f"{r.higher} {r.higher_value:.2f} ≤ {r.lower} {r.lower_value:.2f}{note(r)}"

    lines, verdicts = [], []
    for fam in dict.fromkeys(checks["family"]):
        name = "Averaged over families" if fam == MEAN else f"Family `{fam}`"
        parts = []
        for metric in dict.fromkeys(checks[checks["family"] == fam]["metric"]):
            sub = checks[(checks["family"] == fam) & (checks["metric"] == metric)]
            chain = " > ".join([sub.iloc[0]["higher"]] + list(sub["lower"]))
            shown = metric.replace("Avg@k", at)
            verdict = sub.iloc[0]["verdict"]
            verdicts.append(verdict)
            weak = [pair(r) for r in sub.itertuples() if not (r.holds and r.clear)]
            if verdict == "holds":
                parts.append(f"{shown}: **holds** ({chain}, every pair outside the noise)")
            elif verdict == NOT_TESTABLE:
                parts.append(f"{shown}: **{NOT_TESTABLE}** (SLM-RFT does not clearly improve its base model; "
                             f"{chain}: " + ("; ".join(weak) if weak else "every pair in order and clear") + ")")
            else:
                parts.append(f"{shown}: **does not hold** ({chain} expected; " + "; ".join(weak) + ")")
        lines.append(f"- {name}: " + " · ".join(parts))
    n, held = len(checks), int(checks["holds"].sum())
    clear_held = int((checks["holds"] & checks["clear"]).sum())
    clear_broken = int((~checks["holds"] & checks["clear"]).sum())
    lines.append(f"\n{verdicts.count('holds')} of {len(verdicts)} orderings hold (every pair in order and outside "
                 f"the noise), {verdicts.count(NOT_TESTABLE)} are not testable here. Of {n} pairwise comparisons "
                 f"{held} agree with the paper on point estimates; {clear_held} agree and {clear_broken} disagree by "
                 f"more than twice their standard error (paired over problems and seeds where one side is SLM-RFT, "
                 f"else over seeds for Avg@k and from the bootstrap CIs for the RM score); the rest are within noise.")
    return "\n".join(lines)


CLAIM_COLUMNS = ["family", "metric", "rft_value", "oracle_value", "oracle_set", "diff", "se", "clear", "testable",
                 "base_diff", "base_se"]
ORACLE_SETS = ("oracle_refined", "oracle_synth")  # the sets the oracle writes in its own manner


def _pair_se(sub: pd.DataFrame, a: str, b: str, col: str) -> float:
    """Standard error of ``sub[col][a] - sub[col][b]`` (RM: the paired interval over problems when ``b`` is
    SLM-RFT and it was measured, else from the two sets' 95% CIs; Avg@k: paired over problems and seeds when one
    side is SLM-RFT and it was measured, else over seeds, unpaired)."""
    if col == "rm":
        paired = float(sub.at[a, "rm_paired_se"]) if "rm_paired_se" in sub.columns and b == "slm_rft" else math.nan
        if not math.isnan(paired):
            return paired
        hw = [(float(sub.at[x, "rm_hi"]) - float(sub.at[x, "rm_lo"])) / 2 / 1.96 for x in (a, b)]
        return math.sqrt(hw[0] ** 2 + hw[1] ** 2)
    o = col[: -len("_avg")]
    if "slm_rft" in (a, b) and f"{o}_rft_se" in sub.columns:  # paired over problems and seeds, where measured
        paired = float(sub.at[b if a == "slm_rft" else a, f"{o}_rft_se"])
        if not math.isnan(paired):
            return paired
    ses = [_se(float(sub.at[x, f"{o}_sd"]), len(sub.at[x, f"{o}_seeds"] or {})) for x in (a, b)]
    return math.sqrt(ses[0] ** 2 + ses[1] ** 2)


def paradox_claim(df: pd.DataFrame, objectives: Sequence[str] = ("sft", "dft"), z: float = 2.0) -> pd.DataFrame:
    """The paradox itself, per family (and ``mean``), against the *least favourable* oracle set:

    * RM score: the lower-scored oracle set minus SLM-RFT (the paper: > 0);
    * ``<OBJ> Avg@k``: SLM-RFT minus the better oracle-trained student (the paper: > 0).

    Rows: :data:`CLAIM_COLUMNS` (``diff`` is oriented so that > 0 agrees with the paper; ``clear``:
    ``diff > z * se``).
    """
    rows = []
    if df.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    for fam in dict.fromkeys(df["family"]):
        sub = df[df["family"] == fam].set_index("set")
        orc = [x for x in ORACLE_SETS if x in sub.index]
        if "slm_rft" not in sub.index or not orc:
            continue
        for metric, col in [("RM score", "rm")] + [(f"{o.upper()} Avg@k", f"{o}_avg") for o in objectives]:
            vals = {x: float(sub.at[x, col]) for x in orc}
            rft = float(sub.at["slm_rft", col])
            if math.isnan(rft) or any(math.isnan(v) for v in vals.values()):
                continue
            worst = min(vals, key=vals.get) if col == "rm" else max(vals, key=vals.get)
            diff = vals[worst] - rft if col == "rm" else rft - vals[worst]
            se = _pair_se(sub, worst, "slm_rft", col)
            o = col[: -len("_avg")]
            measured, testable = _testable(sub, col)
            rows.append({"family": fam, "metric": metric, "rft_value": rft, "oracle_value": vals[worst],
                         "oracle_set": LABELS[worst], "diff": diff, "se": se,
                         "clear": bool(not math.isnan(se) and diff > z * se),
                         "testable": testable,
                         "base_diff": float(sub.at["slm_rft", f"{o}_base_diff"]) if measured else math.nan,
                         "base_se": float(sub.at["slm_rft", f"{o}_base_se"]) if measured else math.nan})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def claim_verdict(rows: pd.DataFrame) -> str:
    """The verdict of one family's :func:`paradox_claim` rows: "not testable here" when a utility row's
    precondition failed (SLM-RFT did not improve its base model), else holds / does not hold / in direction only."""
    if "testable" in rows.columns and not rows["testable"].all():
        return NOT_TESTABLE
    if rows["clear"].all():
        return "holds"
    return "does not hold" if (rows["diff"] <= 0).any() else "holds in direction, not clearly in every metric"


def paradox_claim_summary(claim: pd.DataFrame, k: int | None = None) -> str:
    """Markdown: does the paradox (oracle sets score higher yet train worse than SLM-RFT) hold, per family?"""
    if claim.empty:
        return "The paradox cannot be checked: no family has SLM-RFT and oracle sets with scores and utilities."
    at = f"Avg@{k}" if k else "Avg@k"
    lines = []
    for fam in dict.fromkeys(claim["family"]):
        sub = claim[claim["family"] == fam]
        name = "Averaged over families" if fam == MEAN else f"Family `{fam}`"
        parts = [f"{r.metric.replace('Avg@k', at)} {'+' if r.diff >= 0 else ''}{r.diff:.2f} (se {r.se:.2f}, "
                 f"{r.oracle_set} {r.oracle_value:.2f} vs SLM-RFT {r.rft_value:.2f})" for r in sub.itertuples()]
        verdict = claim_verdict(sub)
        if verdict == "not testable here":
            bad = sub[~sub["testable"]]
            parts.insert(0, "SLM-RFT does not improve its base model clearly (" + "; ".join(
                f"{r.metric.split()[0]} {'+' if r.base_diff >= 0 else ''}{r.base_diff:.2f} points, se {r.base_se:.2f}"
                for r in bad.itertuples()) + "; the precondition needs more than twice the se)")
        lines.append(f"- {name}: **{verdict}**: " + "; ".join(parts))
    return "\n".join(lines)


def cost_table(score: Mapping[str, Mapping], finetune: Mapping[str, Mapping],
               objectives: Sequence[str] = ("sft", "dft")) -> pd.DataFrame:
    """Adaptation cost per (family, set): the base model's perplexity (global, Q1-Q4), token-shift
    distance from its own samples, share of symbolic tokens, mean length, and utility (Avg@k %)."""
    rows = []
    for fam, s, m, ft in _set_rows(score, finetune):
        r = {"family": fam, "set": s, "label": LABELS[s], "ppl": m["ppl"],
             **{f"ppl_{q}": m.get(f"ppl_{q}") for q in QUARTERS},
             "tv_distance": m.get("tv_distance"), "symbolic_share": m.get("symbolic_share"),
             "mean_tokens": m.get("mean_tokens")}
        for o in objectives:
            d = ft.get(o)
            r[f"{o}_avg"] = 100 * d["avg"] if d else float("nan")
        rows.append(r)
    return pd.DataFrame(rows)


# Paper A's Table 1 (Qwen2.5-Math-1.5B, mean over five benchmarks; docs/design.md): RM score, SFT Avg@16, DFT Avg@16.
# The paper's Table 1 has no Style-Aligned row: its RM and DFT numbers are from the mechanism table's
# "frontier oracle" row (our Style-Aligned set is written by the tiny world's oracle, the closer analogue);
# the paper gives no SFT number for it.
PAPER_TABLE1 = {
    "oracle_synth": {"rm": 1.88, "sft": 23.26, "dft": 30.02},
    "reference": {"rm": 1.78, "sft": 16.72, "dft": 31.28},
    "oracle_refined": {"rm": 1.70, "sft": 19.60, "dft": 34.06},
    "slm_rft": {"rm": 1.47, "sft": 22.74, "dft": 37.06},
    "style_aligned": {"rm": 1.81, "sft": math.nan, "dft": 38.21},
}
PAPER_MODEL = "Qwen2.5-Math-1.5B"


def _ranks(values: Mapping[str, float]) -> dict[str, float]:
    """Rank of each key by value (1 = highest), ties sharing the lowest rank; NaN values get NaN."""
    known = {k: v for k, v in values.items() if not math.isnan(v)}
    order = sorted(known.values(), reverse=True)
    return {k: (float(order.index(v) + 1) if k in known else math.nan) for k, v in values.items()}


def paper_comparison(df: pd.DataFrame, family: str, objectives: Sequence[str] = ("sft", "dft")) -> pd.DataFrame:
    """Table 1 of the paper beside one row group of :func:`main_table` (a family, or :data:`MEAN`): per set, the
    RM score and each objective's Avg@k, the paper's and ours, and each set's rank in that column (1 = highest;
    ranks among the sets both sides have). Scales differ (another reward model, other benchmarks, a tiny world):
    the ranks are what can be compared. Empty when ``family`` has no rows."""
    sub = df[df["family"] == family].set_index("set") if not df.empty else pd.DataFrame()
    sets = [s for s in SETS if s in sub.index]
    if not sets:
        return pd.DataFrame()
    cols = [("rm", "RM score", "rm")] + [(o, f"{o.upper()} Avg@k (%)", f"{o}_avg") for o in objectives]
    out = pd.DataFrame({"set": [LABELS[s] for s in sets]})
    for key, name, col in cols:
        paper = {s: PAPER_TABLE1[s].get(key, math.nan) for s in sets}
        ours = {s: float(sub.at[s, col]) for s in sets}
        both = {s for s in sets if not math.isnan(paper[s]) and not math.isnan(ours[s])}
        rp = _ranks({s: paper[s] if s in both else math.nan for s in sets})
        ro = _ranks({s: ours[s] if s in both else math.nan for s in sets})
        out[f"{name}, paper"] = [paper[s] for s in sets]
        out[f"{name}, ours"] = [ours[s] for s in sets]
        out[f"{name}, rank paper / ours"] = [f"{rp[s]:.0f} / {ro[s]:.0f}" if s in both else "" for s in sets]
    return out


def utilities_by_set(rows: pd.DataFrame, tiers: Sequence[str] | None = None) -> pd.DataFrame:
    """Both utilities of every student and of the base model, from the finetune stage's per-sample rows
    (``data/paradox/students/<family>/per_problem.parquet``: ``set, objective, seed, tier, pid, sample, correct,
    step_validity``; the base model is set ``base``): per (set, objective), the answer Avg@k and the share of
    *fully valid* solutions (right answer and every step valid: process validity), in %, overall and per tier,
    each the mean over training seeds with its sd (0 for a single seed). Sets in :data:`SETS` order, base first."""
    need = {"set", "objective", "seed", "tier", "correct", "step_validity"}
    if missing := sorted(need - set(rows.columns)):
        raise ValueError(f"per-sample rows lack column(s) {missing}")
    tiers = list(tiers) if tiers is not None else list(dict.fromkeys(rows["tier"]))
    r = rows.assign(acc=rows["correct"].astype(float),
                    valid=(rows["correct"].astype(bool) & (rows["step_validity"] >= 1.0)).astype(float))
    out = []
    order = ["base"] + [x for x in SETS if x in set(r["set"])]
    for s in order:
        for o in dict.fromkeys(r.loc[r["set"] == s, "objective"]):
            g = r[(r["set"] == s) & (r["objective"] == o)]
            row = {"set": "base model" if s == "base" else LABELS[s], "objective": o, "seeds": g["seed"].nunique()}
            for u, name in (("acc", "answer Avg@k"), ("valid", "fully valid")):
                for t in [None] + tiers:
                    sub = g if t is None else g[g["tier"] == t]
                    per_seed = sub.groupby("seed")[u].mean() * 100
                    col = name if t is None else f"{name}, {t}"
                    row[col] = float(per_seed.mean()) if len(per_seed) else math.nan
                    row[f"{col} sd"] = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0
            out.append(row)
    return pd.DataFrame(out)


def rank_correlation(df: pd.DataFrame, x: str, y: str, by: str = "family") -> pd.DataFrame:
    """Spearman correlation of ``x`` and ``y`` over the sets, per ``by`` group (``n`` sets each)."""
    rows = []
    for g, sub in df.groupby(by, sort=False):
        sub = sub[[x, y]].dropna()
        rho = spearman(sub[x], sub[y]) if len(sub) > 2 else float("nan")
        rows.append({by: g, "n": len(sub), "spearman": rho})
    return pd.DataFrame(rows)


__all__ = ["LABELS", "MEAN", "NOT_TESTABLE", "PAPER_MODEL", "PAPER_TABLE1", "QUARTERS", "RM_ORDER", "SETS",
           "UTILITY_ORDER", "chain_verdict", "cost_table", "format_main_table", "load_family_metrics", "main_table",
           "ordering_checks", "ordering_summary", "paper_comparison", "paradox_claim", "paradox_claim_summary",
           "rank_correlation", "spearman", "utilities_by_set"]
