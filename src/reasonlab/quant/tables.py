"""Tables and findings of the quantization report, built from the metrics the quant stages write.

Pure pandas (no torch), tested on fixed inputs. The notebook ``notebooks/quant.py`` only calls
these and displays the results.

Inputs (``metrics/quant/``): ``traces/<reasoner>.json`` (:func:`reasonlab.quant.pipeline.make_traces`),
``ptq/<reasoner>.json`` (:func:`~reasonlab.quant.pipeline.run_ptq_grid`: the FP reference and every
PTQ model) and ``qat/<reasoner>-w<bits>.json`` (:func:`~reasonlab.quant.pipeline.run_qat_grid`); curves
from ``plots/quant/qat/<reasoner>-w<bits>/<run>/probe.tsv``.

Accuracies are fractions in the frames and percentages (points) in the displayed tables.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schema import TIERS

__all__ = [
    "METHODS",
    "load_results",
    "results_frame",
    "rq1_table",
    "rq2_table",
    "load_curves",
    "convergence_table",
    "recovery_table",
    "size_table",
    "findings",
    "fmt_mean_sd",
    "display_rq1",
    "rq1_sources_table",
    "rq2_claims_table",
    "paired_findings",
]

#: Row order of the RQ1 table (FP reference, PTQ baselines, QAT objectives).
METHODS = ("FP", "RTN", "GPTQ", "AWQ", "QAT-SFT", "QAT-KD")
_RUN = re.compile(r"^(?P<objective>[a-z]+)-(?P<init>[a-z]+)-s(?P<seed>\d+)$")


# ----------------------------------------------------------------------------- loading
def _read_dir(path: Path) -> dict[str, dict]:
    out = {}
    for f in sorted(path.glob("*.json")) if path.is_dir() else []:
        try:
            out[f.stem] = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e})") from None
    return out


def _wanted(name: str, reasoners: Sequence[str] | None, bits: Sequence[int] | None) -> bool:
    """Whether a metrics file ``<reasoner>`` or ``<reasoner>-w<bits>`` belongs to the configured grid."""
    reasoner, _, b = name.rpartition("-w") if "-w" in name else (name, "", "")
    return (reasoners is None or reasoner in reasoners) and (bits is None or not b or int(b) in bits)


def load_results(metrics_dir: str | Path, reasoners: Sequence[str] | None = None,
                 bits: Sequence[int] | None = None) -> dict[str, dict[str, dict]]:
    """``{"traces": {reasoner: ...}, "ptq": {reasoner: ...}, "qat": {"<reasoner>-w<bits>": ...}}``, only of
    ``reasoners`` and ``bits`` when given (a metrics folder can hold another profile's files)."""
    root = Path(metrics_dir)
    res = {part: {k: v for k, v in _read_dir(root / part).items() if _wanted(k, reasoners, bits)}
           for part in ("traces", "ptq", "qat")}
    if bits is not None:  # the PTQ files hold every bit width: keep the configured ones (and FP)
        for d in res["ptq"].values():
            d["models"] = {n: m for n, m in d["models"].items() if n == "fp" or int(m["bits"]) in bits}
    if not res["ptq"]:
        raise FileNotFoundError(f"no PTQ metrics under {root / 'ptq'} (run the quant_ptq stages first)")
    return res


def _tier_cols(m: Mapping[str, Any], tiers: Sequence[str]) -> dict[str, float]:
    row: dict[str, float] = {}
    for t in tiers:
        tm = m.get(t) or {}
        row[f"avg_{t}"] = tm.get("avg_at_k", np.nan)
        row[f"greedy_{t}"] = tm.get("greedy", np.nan)
        row[f"len_{t}"] = tm.get("mean_len_tokens", np.nan)
    row["avg"] = m.get("avg_at_k", np.nan)
    row["len"] = m.get("mean_len_tokens", np.nan)
    return row


def results_frame(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """One row per evaluated model (FP, each PTQ model, each QAT run).

    Columns: ``reasoner, bits, method`` (one of :data:`METHODS`), ``objective, init, seed, source, rq1,
    rq2, k`` (``rq1``: an RQ1 run on the reasoner's own traces, the data every table here compares; the other
    sources are in :func:`rq1_sources_table`), per tier ``avg_<tier>`` (Avg@k), ``greedy_<tier>``, ``len_<tier>`` (mean output
    tokens), ``avg`` and ``len`` (their tier means), ``weights_bytes``, ``size_bytes``,
    ``probe_init``, ``probe_final``. FP has ``bits`` 32.
    """
    rows = []
    for reasoner, d in results.get("ptq", {}).items():
        reasoner = d.get("reasoner", reasoner)
        for name, m in d["models"].items():
            method = "FP" if name == "fp" else m["method"].upper()
            rows.append({"reasoner": reasoner, "bits": int(m["bits"]), "method": method, "objective": None,
                         "init": None, "seed": None, "source": None, "rq1": False, "rq2": False, "k": d.get("k"),
                         **_tier_cols(m, TIERS), "weights_bytes": m.get("weights_bytes"),
                         "size_bytes": m.get("size_bytes"), "probe_init": np.nan, "probe_final": np.nan})
    for d in results.get("qat", {}).values():
        for m in d["runs"].values():
            rows.append({"reasoner": d["reasoner"], "bits": int(d["bits"]), "method": f"QAT-{m['objective'].upper()}",
                         "objective": m["objective"], "init": m["init"], "seed": m["seed"],
                         "source": m.get("source", "self"), "rq1": bool(m["rq1"]) and m.get("source", "self") == "self",
                         "rq2": bool(m["rq2"]), "k": d.get("k"), **_tier_cols(m, TIERS),
                         "weights_bytes": m.get("weights_bytes"), "size_bytes": m.get("size_bytes"),
                         "probe_init": m.get("probe_init", np.nan), "probe_final": m.get("probe_final", np.nan)})
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no results")
    return df


def _tiers_present(df: pd.DataFrame) -> list[str]:
    return [t for t in TIERS if f"avg_{t}" in df and df[f"avg_{t}"].notna().any()]


def _sd(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1)) if len(x) > 1 else np.nan


# ----------------------------------------------------------------------------- RQ1
def rq1_table(df: pd.DataFrame) -> pd.DataFrame:
    """RQ1: per (reasoner, bits) block, rows FP, RTN, GPTQ, AWQ, QAT-SFT, QAT-KD (the RQ1 runs).

    Columns: ``reasoner, bits, method, n`` (models averaged: seeds), per tier ``<tier>`` and
    ``<tier>_sd`` (Avg@k in points, mean and sample s.d. over seeds), ``mean``/``mean_sd`` (tier
    mean), ``len`` (mean output tokens) and, for QAT, ``init``.
    """
    tiers = _tiers_present(df)
    fp = df[df.method == "FP"]
    rows = []
    for (reasoner, bits), block in df[df.method != "FP"].groupby(["reasoner", "bits"], sort=False):
        parts = {"FP": fp[fp.reasoner == reasoner]}
        for method in METHODS[1:4]:
            parts[method] = block[block.method == method]
        for method in METHODS[4:]:
            parts[method] = block[(block.method == method) & block.rq1]
        for method in METHODS:
            sub = parts[method]
            if sub.empty:
                continue
            row: dict[str, Any] = {"reasoner": reasoner, "bits": int(bits), "method": method, "n": len(sub),
                                   "init": sub["init"].iloc[0] if method.startswith("QAT") else None}
            for t in tiers:
                row[t] = 100 * sub[f"avg_{t}"].mean()
                row[f"{t}_sd"] = 100 * _sd(sub[f"avg_{t}"])
            row["mean"] = 100 * sub["avg"].mean()
            row["mean_sd"] = 100 * _sd(sub["avg"])
            row["len"] = sub["len"].mean()
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values(["reasoner", "bits"], ascending=[True, False], kind="stable").reset_index(drop=True)


def fmt_mean_sd(mean: float, sd: float, digits: int = 1) -> str:
    """``"33.5 ± 1.2"``, or ``"33.5"`` when the spread is undefined (one model)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def display_rq1(table: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """:func:`rq1_table` formatted for display (``mean ± s.d.`` strings)."""
    tiers = [t for t in TIERS if t in table]
    label = f"Avg@{k}" if k else "Avg@k"
    out = table[["reasoner", "bits", "method", "n"]].copy()
    out["bits"] = ["FP32" if b == 32 else f"W{b}" for b in table["bits"]]
    for t in tiers + ["mean"]:
        out[f"{label} {t}"] = [fmt_mean_sd(m, s) for m, s in zip(table[t], table[f"{t}_sd"])]
    out["mean length (tokens)"] = [f"{v:.1f}" for v in table["len"]]
    return out


def _interval(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]"


def rq1_sources_table(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """RQ1 per training-data source, from the QAT stages' ``rq1_sources`` statistics (paired over test problems and
    seeds, in points): one row per (reasoner, bits, source) with ``qat_sft``, ``qat_kd``, ``control_sft`` (means),
    ``kd_minus_sft`` (the verdict of "KD beats SFT": ``verdict``, and ``opposite`` when SFT is higher beyond the
    interval), ``sft_minus_control``, ``kd_minus_fp`` (KD against its control, the FP model), ``control_minus_fp``
    (what fine-tuning the FP model on the source does), ``init_minus_fp`` (the precondition: the PTQ init must
    lose accuracy) as ``"mean [lo, hi]"`` strings. Empty when no stage wrote them (an older run)."""
    rows = []
    for d in results.get("qat", {}).values():
        st = d.get("rq1_sources")
        if not st:
            continue
        pre = st["precondition"]
        for source, s in st["sources"].items():
            v = s.get("kd_beats_sft") or {}
            rows.append({"reasoner": d["reasoner"], "bits": int(d["bits"]), "source": source,
                         "qat_sft": s.get("qat_sft", np.nan), "qat_kd": s.get("qat_kd", np.nan),
                         "control_sft": s.get("control_sft", np.nan),
                         "kd_minus_sft": _interval(v.get("diff")), "verdict": v.get("verdict", "–"),
                         "opposite": bool(v.get("opposite", False)),
                         "sft_minus_control": _interval(s.get("sft_minus_control")),
                         "kd_minus_fp": _interval(s.get("kd_minus_fp")),
                         "control_minus_fp": _interval(s.get("control_minus_fp")),
                         "init_minus_fp": _interval(pre["init_minus_fp"])})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values(["reasoner", "bits"], ascending=[True, False], kind="stable").reset_index(drop=True)


def rq2_claims_table(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """RQ2's verdicts from the QAT stages' ``rq2`` statistics: one row per (reasoner, bits, objective, init) other
    than the baseline init, with the probe at step 0 of both inits and the FP control's (``start``, ``baseline_start``,
    ``control``, in %), ``converges_faster`` (area after step 0, init minus baseline) and ``ends_higher`` (final test
    accuracy) as ``"mean [lo, hi]"`` in points with their verdicts, ``rise_diff`` (how much more the init's curve
    rose above its own start), and ``reached`` (seeds reaching the target share of the control, per init)."""
    rows = []
    for d in results.get("qat", {}).values():
        st = d.get("rq2")
        if not st:
            continue
        base = st["baseline"]
        for obj, o in st["objectives"].items():
            for init, c in o.get(f"vs_{base}", {}).items():
                pts = lambda x: {**x, "mean": 100 * x["mean"], "ci95": [100 * v for v in x["ci95"]]}
                cf, eh = c["converges_faster"], c["ends_higher"]
                rows.append({
                    "reasoner": d["reasoner"], "bits": int(d["bits"]), "objective": obj, "init": init, "vs": base,
                    "start": 100 * o["inits"][init]["probe_init"], "baseline_start": 100 * o["inits"][base]["probe_init"],
                    "control": 100 * o["control_probe"],
                    "converges_faster": _interval(pts(cf["diff"])) if "diff" in cf else "–",
                    "converges_faster_verdict": cf["verdict"],
                    "ends_higher": _interval(pts(eh["diff"])) if "diff" in eh else "–",
                    "ends_higher_verdict": eh["verdict"],
                    "rise_diff": _interval(pts(c["rise_diff"])),
                    "reached": f"{init} {o['inits'][init]['reached_share']:.0%}, {base} "
                               f"{o['inits'][base]['reached_share']:.0%}"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- RQ2
def rq2_table(df: pd.DataFrame, bits: int | None = None) -> pd.DataFrame:
    """RQ2: QAT init x objective after the fixed budget (the RQ2 runs at ``bits``).

    One row per (reasoner, init, objective): ``n`` seeds, ``mean``/``mean_sd`` (Avg@k tier mean,
    points), ``probe_init``/``probe_final`` (probe accuracy at step 0 and at the end, points) and
    ``ptq`` (the Avg@k of the init model itself, points; FP init starts from RTN's grid).
    ``bits`` defaults to the bit width of the RQ2 runs.
    """
    q = df[df.rq2]
    if q.empty:
        return pd.DataFrame()
    if bits is None:
        bits = int(q.bits.iloc[0])
    q = q[q.bits == bits]
    start = df[df.method.isin(["RTN", "GPTQ", "AWQ"]) & (df.bits == bits)]
    rows = []
    for (reasoner, init, objective), sub in q.groupby(["reasoner", "init", "objective"], sort=False):
        init_model = "RTN" if init == "fp" else init.upper()
        ptq = start[(start.reasoner == reasoner) & (start.method == init_model)]["avg"]
        rows.append({"reasoner": reasoner, "bits": bits, "init": init, "objective": objective, "n": len(sub),
                     "mean": 100 * sub["avg"].mean(), "mean_sd": 100 * _sd(sub["avg"]),
                     "probe_init": 100 * sub["probe_init"].mean(), "probe_final": 100 * sub["probe_final"].mean(),
                     "ptq": 100 * ptq.iloc[0] if len(ptq) else np.nan})
    order = {i: n for n, i in enumerate(("fp", "rtn", "gptq", "awq"))}
    out = pd.DataFrame(rows)
    return out.sort_values(["reasoner", "init", "objective"], key=lambda s: s.map(order) if s.name == "init" else s,
                           kind="stable").reset_index(drop=True)


def load_curves(plots_dir: str | Path, reasoners: Sequence[str] | None = None,
                bits: Sequence[int] | None = None) -> pd.DataFrame:
    """Probe accuracy vs QAT step of every run: ``reasoner, bits, run, objective, init, seed, step, probe_acc``.

    Reads ``<plots_dir>/qat/<reasoner>-w<bits>/<run>/probe.tsv`` (or ``<plots_dir>/<reasoner>-w<bits>/...``).
    """
    root = Path(plots_dir)
    if (root / "qat").is_dir():
        root = root / "qat"
    frames = []
    for f in sorted(root.glob("*-w*/*/probe.tsv")):
        reasoner, _, b = f.parent.parent.name.rpartition("-w")
        m = _RUN.match(f.parent.name)
        if not m or not b.isdigit() or not _wanted(f.parent.parent.name, reasoners, bits):
            continue
        c = pd.read_csv(f, sep="\t")
        c = c.assign(reasoner=reasoner, bits=int(b), run=f.parent.name, objective=m["objective"],
                     init=m["init"], seed=int(m["seed"]))
        frames.append(c)
    cols = ["reasoner", "bits", "run", "objective", "init", "seed", "step", "probe_acc"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def convergence_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (reasoner, bits, objective, init), mean over seeds of: probe accuracy at step 0 (``start``),
    at the last step (``final``), its mean over the probed steps after step 0 (``area_after_0``: the init's own
    point left out, so a higher start alone does not win it), all in points, and ``steps_to_90``: the first step
    at which the probe reaches 90% of its final value (a description; the stage's ``rq2`` statistics measure
    against the FP control)."""
    rows = []
    for key, run in curves.groupby(["reasoner", "bits", "objective", "init", "seed"], sort=False):
        run = run.sort_values("step")
        s, a = run["step"].to_numpy(float), run["probe_acc"].to_numpy(float)
        auc = float(a[s > 0].mean()) if (s > 0).any() else float(a[-1])
        reach = s[a >= 0.9 * a[-1]]
        rows.append(dict(zip(["reasoner", "bits", "objective", "init", "seed"], key),
                         start=100 * a[0], final=100 * a[-1], area_after_0=100 * auc,
                         steps_to_90=float(reach[0]) if len(reach) else np.nan))
    if not rows:
        return pd.DataFrame(columns=["reasoner", "bits", "objective", "init", "n", "start", "final", "area_after_0",
                                     "steps_to_90"])
    per_seed = pd.DataFrame(rows)
    out = per_seed.groupby(["reasoner", "bits", "objective", "init"], sort=False).agg(
        n=("seed", "size"), start=("start", "mean"), final=("final", "mean"), area_after_0=("area_after_0", "mean"),
        steps_to_90=("steps_to_90", "mean")).reset_index()
    return out


# ----------------------------------------------------------------------------- recovery and sizes
def recovery_table(df: pd.DataFrame, bits: int | None = None) -> pd.DataFrame:
    """Low-bit recovery per reasoner at ``bits`` (default: the lowest bit width present).

    ``fp``, ``best_ptq`` (and ``best_ptq_method``), ``qat_sft``, ``qat_kd`` (RQ1 runs, mean over seeds):
    Avg@k tier means in points; ``recovered_kd`` / ``recovered_sft`` = share of the PTQ loss
    ``fp - best_ptq`` that QAT wins back (NaN when PTQ lost nothing).
    """
    if bits is None:
        bits = int(df.loc[df.method != "FP", "bits"].min())
    rows = []
    for reasoner, sub in df.groupby("reasoner", sort=False):
        fp = sub.loc[sub.method == "FP", "avg"]
        ptq = sub[sub.method.isin(["RTN", "GPTQ", "AWQ"]) & (sub.bits == bits)]
        if fp.empty or ptq.empty:
            continue
        best = ptq.loc[ptq["avg"].idxmax()]
        row = {"reasoner": reasoner, "bits": bits, "fp": 100 * fp.iloc[0], "best_ptq": 100 * best["avg"],
               "best_ptq_method": best["method"]}
        for obj in ("sft", "kd"):
            q = sub[(sub.method == f"QAT-{obj.upper()}") & sub.rq1 & (sub.bits == bits)]["avg"]
            row[f"qat_{obj}"] = 100 * q.mean() if len(q) else np.nan
            row[f"qat_{obj}_sd"] = 100 * _sd(q)
            lost = row["fp"] - row["best_ptq"]
            row[f"recovered_{obj}"] = (row[f"qat_{obj}"] - row["best_ptq"]) / lost if lost > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def size_table(df: pd.DataFrame) -> pd.DataFrame:
    """On-disk size per reasoner and format: FP32 and each bit width (packed checkpoints).

    ``weights_kib`` (weight files), ``checkpoint_kib`` (whole directory, tokenizer included) and
    ``compression`` = FP32 weight bytes / these weight bytes. Quantized sizes are the median over
    the models of that bit width (PTQ and QAT exports share the packed format).
    """
    rows = []
    for reasoner, sub in df.groupby("reasoner", sort=False):
        fp = sub[sub.method == "FP"]
        if fp.empty:
            continue
        fp_w = float(fp["weights_bytes"].iloc[0])
        for bits, b in sorted(sub.groupby("bits"), key=lambda kv: -kv[0]):
            w = float(b["weights_bytes"].median())
            rows.append({"reasoner": reasoner, "format": "FP32" if bits == 32 else f"W{bits} (packed)",
                         "weights_kib": w / 1024, "checkpoint_kib": float(b["size_bytes"].median()) / 1024,
                         "compression": fp_w / w if w else np.nan})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- findings
def _verdict(flags: Sequence[bool]) -> str:
    if not flags:
        return "n/a"
    return "yes" if all(flags) else "partly" if any(flags) else "no"


MIN_FP = 20.0
"""The capability precondition of every quant finding: the full-precision reasoner's Avg@k (tier mean, points)
must reach it. Below it the reasoner sits near the floor (world v2's first run: FP 4.4 points, the base models
3-9), where PTQ, QAT and FP differ by a point or two of sampling noise and a verdict would read noise."""


def fp_levels(df: pd.DataFrame) -> dict[str, float]:
    """Each reasoner's full-precision Avg@k (tier mean, points)."""
    return {r: 100 * float(s.loc[s.method == "FP", "avg"].iloc[0])
            for r, s in df.groupby("reasoner", sort=False) if (s.method == "FP").any()}


_SOURCE_LABEL = {"oracle": "SFT on a stronger writer's traces (source oracle, the paper's setting)",
                 "self": "SFT on the reasoner's own verified traces (source self)",
                 "reference": "SFT on the world's reference solutions (source reference)"}


def _paired_verdict(verdicts: Sequence[str]) -> str:
    testable = [v for v in verdicts if v != "not testable here"]
    if not testable:
        return "not testable here"
    held = sum(v == "holds" for v in testable)
    return "yes" if held == len(testable) else "partly" if held else "no"


def paired_findings(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """RQ1 and RQ2 from the QAT stages' paired statistics (intervals over problems and seeds), one row per claim:
    "KD beats SFT" per data source, and "init converges faster" / "ends higher" than the baseline per init. A
    block's verdict is its interval's (:func:`rq1_sources_table`, :func:`rq2_claims_table`); ``holds`` is ``yes``
    when every testable block holds, ``partly``, ``no``, or ``not testable here`` when no block's precondition is
    met. These replace the point comparisons of the same claims, and no capability floor applies: the intervals
    say what sampling noise allows."""
    rows = []
    t1 = rq1_sources_table(results)
    for source, b in (t1.groupby("source", sort=False) if not t1.empty else []):
        ev = [f"{r.reasoner} W{r.bits}: {r.kd_minus_sft} {r.verdict}"
              + (f" (GPTQ init - FP {r.init_minus_fp})" if r.verdict == "not testable here" else "")
              for r in b.itertuples()]
        rows.append({"finding": f"RQ1: KD beats SFT as the QAT objective, {_SOURCE_LABEL.get(source, source)}",
                     "evidence": "; ".join(ev), "holds": _paired_verdict(list(b.verdict))})
    t2 = rq2_claims_table(results)
    for (init, vs), b in (t2.groupby(["init", "vs"], sort=False) if not t2.empty else []):
        for claim, label in (("converges_faster", "converges faster (probe area after step 0)"),
                             ("ends_higher", "ends higher (test accuracy after the budget)")):
            ev = [f"{r.reasoner} W{r.bits} {r.objective}: {getattr(r, claim)} {getattr(r, claim + '_verdict')}"
                  for r in b.itertuples()]
            rows.append({"finding": f"RQ2: {init.upper()} init {label} than {vs.upper()} init",
                         "evidence": "; ".join(ev), "holds": _paired_verdict(list(b[claim + "_verdict"]))})
    return pd.DataFrame(rows, columns=["finding", "evidence", "holds"])


def findings(df: pd.DataFrame, curves: pd.DataFrame | None = None, *, collapse_share: float = 0.5,
             recover_share: float = 0.5, min_fp: float = MIN_FP,
             results: Mapping[str, Mapping[str, dict]] | None = None) -> pd.DataFrame:
    """Paper B's findings with the capability precondition (:data:`MIN_FP`) checked first.

    Reasoners whose FP Avg@k is below ``min_fp`` are left out of every verdict (the evidence says so, with their
    FP level); when no reasoner meets it, every finding is ``not testable here``. Otherwise as
    :func:`findings_unchecked`. With ``results`` holding the stages' paired statistics, RQ1's and RQ2's rows are
    those of :func:`paired_findings` instead (their own preconditions, no floor).
    """
    out = _findings_floor(df, curves, collapse_share=collapse_share, recover_share=recover_share, min_fp=min_fp)
    paired = paired_findings(results) if results is not None else pd.DataFrame()
    if paired.empty:
        return out
    point = out[~out.finding.str.startswith(("RQ1", "RQ2"))]
    return pd.concat([point, paired], ignore_index=True)


def _findings_floor(df: pd.DataFrame, curves: pd.DataFrame | None, *, collapse_share: float, recover_share: float,
                    min_fp: float) -> pd.DataFrame:
    levels = fp_levels(df)
    weak = {r: v for r, v in levels.items() if v < min_fp}
    if not weak:
        return findings_unchecked(df, curves, collapse_share=collapse_share, recover_share=recover_share)
    note = (f"precondition FP Avg@k >= {min_fp:.0f} not met by "
            + ", ".join(f"{r} (FP {v:.1f})" for r, v in weak.items()))
    kept = df[~df.reasoner.isin(list(weak))]
    if kept.empty or (kept.method == "FP").sum() == 0:
        out = findings_unchecked(df, curves, collapse_share=collapse_share, recover_share=recover_share)
        out["holds"] = "not testable here"
        out["evidence"] = note + ". Numbers, for the record only: " + out["evidence"]
        return out
    kept_curves = curves[~curves.reasoner.isin(list(weak))] if curves is not None and "reasoner" in curves else curves
    out = findings_unchecked(kept, kept_curves, collapse_share=collapse_share, recover_share=recover_share)
    out["evidence"] = out["evidence"] + f" ({note}: left out)"
    return out


def findings_unchecked(df: pd.DataFrame, curves: pd.DataFrame | None = None, *, collapse_share: float = 0.5,
                       recover_share: float = 0.5) -> pd.DataFrame:
    """Which of paper B's findings hold here, computed from the results (nothing hard-coded), without the
    capability precondition (:func:`findings` checks it).

    Columns ``finding`` (the paper's claim), ``evidence`` (the numbers, points) and ``holds``:
    ``yes`` (in every block it applies to), ``partly`` (in some), ``no`` (in none) or ``n/a``
    (no data). Criteria:

    1. *2-bit PTQ collapses*: at the lowest bit width the best PTQ method keeps less than
       ``collapse_share`` of the FP Avg@k.
    2. *GPTQ beats RTN as PTQ* (why it is the better init): GPTQ > RTN at every (reasoner, bits).
    3. *RQ1: KD beats SFT*: QAT-KD mean > QAT-SFT mean in each (reasoner, bits) block.
    4. *RQ2: PTQ (GPTQ) init beats RTN and FP init*: for each (reasoner, objective) of the ablation.
    5. *RQ2: PTQ init converges faster*: GPTQ-init probe curve has a higher area after step 0 than FP- and
       RTN-init curves, per (reasoner, objective).

    These are point comparisons; the paired intervals and verdicts of RQ1 and RQ2 are in
    :func:`rq1_sources_table` and :func:`rq2_claims_table`.
    6. *QAT recovers much of the low-bit loss*: QAT-KD wins back at least ``recover_share`` of the
       FP - best-PTQ gap at the lowest bit width.
    """
    rows = []
    rec = recovery_table(df)

    # 1. collapse
    flags, ev = [], []
    for r in rec.itertuples():
        flags.append(r.best_ptq < collapse_share * r.fp)
        low = df[(df.reasoner == r.reasoner) & (df.bits == r.bits) & df.method.isin(["RTN", "GPTQ", "AWQ"])]
        each = ", ".join(f"{m.method} {100 * m.avg:.1f}" for m in low.itertuples())
        ev.append(f"{r.reasoner}: FP {r.fp:.1f} -> W{r.bits} PTQ {each}")
    rows.append({"finding": f"Low-bit (W{int(rec.bits.iloc[0]) if len(rec) else '?'}) PTQ collapses "
                            f"(best PTQ keeps < {collapse_share:.0%} of FP accuracy)",
                 "evidence": "; ".join(ev), "holds": _verdict(flags)})

    # 2. GPTQ vs RTN
    flags, ev = [], []
    ptq = df[df.method.isin(["RTN", "GPTQ"])]
    for (reasoner, bits), b in ptq.groupby(["reasoner", "bits"], sort=False):
        g, r_ = b.loc[b.method == "GPTQ", "avg"], b.loc[b.method == "RTN", "avg"]
        if len(g) and len(r_):
            flags.append(float(g.iloc[0]) > float(r_.iloc[0]))
            ev.append(f"{reasoner} W{bits}: GPTQ {100 * g.iloc[0]:.1f} vs RTN {100 * r_.iloc[0]:.1f}")
    rows.append({"finding": "GPTQ is a better PTQ than RTN", "evidence": "; ".join(ev), "holds": _verdict(flags)})

    # 3. RQ1 KD > SFT
    flags, ev = [], []
    rq1 = df[df.rq1]
    for (reasoner, bits), b in rq1.groupby(["reasoner", "bits"], sort=False):
        kd, sft = b.loc[b.objective == "kd", "avg"], b.loc[b.objective == "sft", "avg"]
        if len(kd) and len(sft):
            flags.append(kd.mean() > sft.mean())
            ev.append(f"{reasoner} W{bits}: KD {100 * kd.mean():.1f} vs SFT {100 * sft.mean():.1f}")
    rows.append({"finding": "RQ1: KD beats SFT as the QAT objective", "evidence": "; ".join(ev),
                 "holds": _verdict(flags)})

    # 4. RQ2 final accuracy by init
    flags, ev = [], []
    rq2 = rq2_table(df)
    if not rq2.empty:
        for (reasoner, objective), b in rq2.groupby(["reasoner", "objective"], sort=False):
            by = b.set_index("init")["mean"]
            if "gptq" in by and any(i in by for i in ("fp", "rtn")):
                others = [by[i] for i in ("fp", "rtn") if i in by]
                flags.append(by["gptq"] > max(others))
                ev.append(f"{reasoner} {objective}: " + ", ".join(f"{i} {v:.1f}" for i, v in by.items()))
    rows.append({"finding": "RQ2: GPTQ init beats RTN and FP init after the same budget", "evidence": "; ".join(ev),
                 "holds": _verdict(flags)})

    # 5. RQ2 convergence
    flags, ev = [], []
    if curves is not None and not curves.empty and not rq2.empty:
        conv = convergence_table(curves)
        conv = conv[conv.bits == int(rq2.bits.iloc[0])]
        for (reasoner, objective), b in conv.groupby(["reasoner", "objective"], sort=False):
            by = b.set_index("init")["area_after_0"]
            if "gptq" in by and any(i in by for i in ("fp", "rtn")):
                flags.append(by["gptq"] > max(by[i] for i in ("fp", "rtn") if i in by))
                ev.append(f"{reasoner} {objective}: curve area after step 0 " + ", ".join(f"{i} {v:.1f}" for i, v in by.items()))
    rows.append({"finding": "RQ2: PTQ (GPTQ) init converges faster (higher accuracy-vs-step curve)",
                 "evidence": "; ".join(ev), "holds": _verdict(flags)})

    # 6. recovery
    flags, ev = [], []
    for r in rec.itertuples():
        if not math.isnan(r.qat_kd):
            gap = r.fp - r.best_ptq
            flags.append(bool(gap > 0 and r.recovered_kd >= recover_share))
            share = f"{r.recovered_kd:.0%} of the gap" if gap > 0 else "no gap"
            ev.append(f"{r.reasoner} W{r.bits}: QAT-KD {r.qat_kd:.1f} vs best PTQ {r.best_ptq:.1f} ({share})")
    rows.append({"finding": f"QAT recovers much (>= {recover_share:.0%}) of the low-bit PTQ loss",
                 "evidence": "; ".join(ev), "holds": _verdict(flags)})
    return pd.DataFrame(rows)
