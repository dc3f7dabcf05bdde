"""Headline results of several runs of the pipeline side by side (not a test).

    python benchmarks/compare_runs.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--out benchmarks/results/compare.md]

``RUN_DIR`` is the root of a repository copy after ``dvc repro`` (it reads ``metrics/`` and ``plots/quant``).
Use it to judge a change against the run-to-run spread: e.g. ``before=<main at the old commit>``,
``after=<this commit>``, ``seed1=<this commit with -S seed=1>``. Every figure comes from the library's own table
functions (the reports' code), so the comparison shows what the reports would say:

* base models: Avg@k per tier (``metrics/eval``);
* paradox: the main table's family means per set and objective, and the per-family claim verdicts;
* quant: the low-bit recovery table and the findings' verdicts;
* the oracle modes' held-out verification rates, and every stage's ``stage_wall_s`` where recorded.

Prints markdown; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from reasonlab.paradox.tables import MEAN, claim_verdict, load_family_metrics, main_table, paradox_claim
from reasonlab.quant.tables import findings, load_curves, load_results, recovery_table, results_frame

TIERS = ("easy", "medium", "hard")


def base_models(run: Path) -> dict[str, dict[str, float]]:
    out = {}
    for f in sorted((run / "metrics" / "eval").glob("*.json")):
        m = json.loads(f.read_text())
        k = m["k"]
        out[f.stem] = {t: 100 * m[t][f"avg@{k}"] for t in TIERS if t in m}
    return out


def paradox(run: Path, families=("qwen", "llama", "deepseek")) -> dict:
    score, finetune = load_family_metrics(run / "metrics" / "paradox", families)
    df = main_table(score, finetune)
    means = df[df["family"] == MEAN].set_index("set") if not df.empty else pd.DataFrame()
    claim = paradox_claim(df)
    # empty when no problem survived into the sets (smoke)
    verdicts = {fam: claim_verdict(claim[claim["family"] == fam]) for fam in dict.fromkeys(claim["family"])}
    for fam in families:  # a family too few problems survived for (runs since the not-testable rule)
        v = json.loads((run / "metrics" / "paradox" / "variants" / f"{fam}.json").read_text())
        if v.get("not_testable"):
            verdicts[fam] = f"not testable here ({v.get('n_surviving')} problems survive)"
    modes = json.loads((run / "metrics" / "paradox" / "oracle_modes.json").read_text())["held_out"]
    per_family = {f"{r.family} {r.set}": {o: float(getattr(r, f"{o}_avg")) for o in ("sft", "dft")}
                  for r in df[df["family"] != MEAN].itertuples()} if not df.empty else {}
    return {"mean": {s: {o: float(means.at[s, f"{o}_avg"]) for o in ("sft", "dft")} for s in means.index},
            "per_family": per_family,
            "verdicts": verdicts,
            "oracle_verified": {m: 100 * modes[m]["pass_rate"] for m in ("synth", "refine", "style")}}


def stage_times(run: Path) -> dict[str, float]:
    """``stage_wall_s`` of every stage's metrics file (runs from before it was recorded have none)."""
    out = {}
    for f in sorted((run / "metrics").rglob("*.json")):
        m = json.loads(f.read_text())
        if isinstance(m, dict) and "stage_wall_s" in m:
            out[str(f.relative_to(run / "metrics").with_suffix(""))] = m["stage_wall_s"]
    return out


def quant(run: Path) -> dict:
    df = results_frame(load_results(run / "metrics" / "quant"))
    curves = load_curves(run / "plots" / "quant")
    rec = recovery_table(df)
    fd = findings(df, curves)
    return {"recovery": {r.reasoner: {"fp": r.fp, "best_ptq": r.best_ptq, "qat_sft": r.qat_sft, "qat_kd": r.qat_kd}
                         for r in rec.itertuples()},
            "findings": dict(zip(fd["finding"], fd["holds"]))}


def collect(run: Path) -> dict:
    return {"base": base_models(run), "paradox": paradox(run), "quant": quant(run), "stage_wall_s": stage_times(run)}


def _table(rows: dict[str, dict[str, object]]) -> str:
    return pd.DataFrame(rows).T.to_markdown(floatfmt=".1f")


def render(runs: dict[str, dict]) -> str:
    names = list(runs)
    out = ["## Base models, Avg@k (%)"]
    models = dict.fromkeys(m for r in runs.values() for m in r["base"])
    out.append(_table({f"{m} {t}": {n: runs[n]["base"].get(m, {}).get(t) for n in names}
                       for m in models for t in TIERS}))
    out.append("\n## Paradox: Avg@k (%) per set, mean over the testable families")
    sets = dict.fromkeys(s for r in runs.values() for s in r["paradox"]["mean"])
    out.append(_table({f"{s} {o}": {n: runs[n]["paradox"]["mean"].get(s, {}).get(o) for n in names}
                       for s in sets for o in ("sft", "dft")}))
    out.append("\n## Paradox: Avg@k (%) per family and set (mean over seeds; a family absent from a run was not testable)")
    rows = dict.fromkeys(k for r in runs.values() for k in r["paradox"].get("per_family", {}))
    out.append(_table({f"{k} {o}": {n: runs[n]["paradox"].get("per_family", {}).get(k, {}).get(o) for n in names}
                       for k in rows for o in ("sft", "dft")}))
    out.append("\n## Oracle modes: held-out drafts verified (%)")
    out.append(_table({m: {n: runs[n]["paradox"]["oracle_verified"][m] for n in names}
                       for m in ("synth", "refine", "style")}))
    fams = dict.fromkeys(f for r in runs.values() for f in r["paradox"]["verdicts"])
    out.append("\n## Paradox verdicts")
    out.append(_table({f: {n: runs[n]["paradox"]["verdicts"].get(f) for n in names} for f in fams}))
    out.append("\n## Quant: lowest bit width, Avg@k (%)")
    reas = dict.fromkeys(x for r in runs.values() for x in r["quant"]["recovery"])
    out.append(_table({f"{x} {c}": {n: runs[n]["quant"]["recovery"].get(x, {}).get(c) for n in names}
                       for x in reas for c in ("fp", "best_ptq", "qat_sft", "qat_kd")}))
    out.append("\n## Quant findings")
    fnd = dict.fromkeys(f for r in runs.values() for f in r["quant"]["findings"])
    out.append(_table({f: {n: runs[n]["quant"]["findings"].get(f) for n in names} for f in fnd}))
    stages = dict.fromkeys(st for r in runs.values() for st in r["stage_wall_s"])
    if stages:
        out.append("\n## Stage wall time (s, process start to metrics written)")
        rows = {st: {n: runs[n]["stage_wall_s"].get(st) for n in names} for st in stages}
        rows["total"] = {n: sum(runs[n]["stage_wall_s"].values()) or None for n in names}
        out.append(_table(rows))
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    ap.add_argument("--out", default="benchmarks/results/compare.md")
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    runs = {}
    for spec in a.runs:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path, "metrics").is_dir():
            raise SystemExit(f"compare_runs: {spec!r} is not NAME=RUN_DIR with RUN_DIR/metrics")
        runs[name] = collect(Path(path))
    text = render(runs)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    if a.json:
        Path(a.json).write_text(json.dumps(runs, indent=1))
    print(text)


if __name__ == "__main__":
    main()
