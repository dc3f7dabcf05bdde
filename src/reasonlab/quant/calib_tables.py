"""Tables of the calibration-domain report (RQ4) from the ``quant_calib`` stages' metrics and curves.

Pure functions of ``metrics/quant/calib/<reasoner>.json`` and ``plots/quant/calib/<reasoner>/<domain>-s<seed>/``:
the notebook ``notebooks/calibration.py`` only shows what they return.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..report import load_metrics_dir
from ..schema import TIERS

__all__ = ["load_calib", "sets_table", "ptq_table", "ptq_claims", "qat_table", "qat_claims", "load_calib_curves",
           "loss_table", "fmt_diff"]

_RUN = re.compile(r"^(?P<domain>[a-z_]+)-s(?P<seed>\d+)$")


def load_calib(metrics_dir: str | Path, reasoners: Sequence[str] | None = None) -> dict[str, dict]:
    """``{reasoner: metrics}`` of ``<metrics_dir>/<reasoner>.json`` (only ``reasoners`` when given)."""
    try:
        res = load_metrics_dir(metrics_dir)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e} (run the quant_calib stages first)") from None
    res = {k: v for k, v in res.items() if reasoners is None or k in reasoners}
    if not res:
        raise FileNotFoundError(f"no calibration metrics of {list(reasoners or [])} under {metrics_dir} "
                                "(run the quant_calib stages first)")
    return res


def fmt_diff(d: Mapping[str, Any] | None, scale: float = 100.0) -> str:
    """``+1.2 [-0.3, +2.8]`` (points) of a :func:`reasonlab.stats.paired_diff` result."""
    if not d:
        return ""
    lo, hi = d["ci95"]
    return f"{scale * d['mean']:+.1f} [{scale * lo:+.1f}, {scale * hi:+.1f}]"


def sets_table(res: Mapping[str, dict]) -> pd.DataFrame:
    """One row per reasoner and calibration domain: size, mean tokens, content hash, first sources."""
    return pd.DataFrame([{"reasoner": r, "domain": d, "texts": c["n"], "mean tokens": c["mean_tokens"],
                          "digest": c["digest"], "first sources": ", ".join(map(str, c["sources"][:3]))}
                         for r, m in res.items() for d, c in m["calib"].items()])


def ptq_table(res: Mapping[str, dict], tiers: Sequence[str] = TIERS) -> pd.DataFrame:
    """Avg@k (%) of FP and of every PTQ model per calibration domain, per tier and overall."""
    rows = []
    for r, m in res.items():
        rows.append({"reasoner": r, "model": "FP", "domain": "-", **_tiers(m["fp"], tiers)})
        for name, p in m["ptq"].items():
            for d, e in p["domains"].items():
                rows.append({"reasoner": r, "model": name.upper(), "domain": d, **_tiers(e, tiers)})
    return pd.DataFrame(rows)


def _tiers(m: Mapping[str, Any], tiers: Sequence[str]) -> dict:
    row = {t: 100 * m[t]["avg_at_k"] for t in tiers if t in m}
    row["avg"] = 100 * m["avg_at_k"]
    return row


def ptq_claims(res: Mapping[str, dict]) -> pd.DataFrame:
    """"Calibrating on the reasoner's own traces helps PTQ alone", per reasoner, PTQ model and other domain."""
    rows = []
    for r, m in res.items():
        for name, p in m["ptq"].items():
            for d, c in p["aligned_vs"].items():
                rows.append({"reasoner": r, "model": name.upper(), "vs": d,
                             "FP − PTQ(vs), points": fmt_diff(c["fp_minus_other"]),
                             "traces − vs, points": fmt_diff(c.get("diff")), "verdict": c["verdict"],
                             "why": c.get("why", "")})
    return pd.DataFrame(rows)


def qat_table(res: Mapping[str, dict]) -> pd.DataFrame:
    """Per reasoner and calibration domain of the QAT init: the init's probe accuracy, steps to the target per
    seed, the area after step 0 and the final test Avg@k (mean ± sd over seeds), in %."""
    rows = []
    for r, m in res.items():
        q = m["qat"]
        for d, v in q["domains"].items():
            rows.append({"reasoner": r, "domain": d, "init probe": 100 * v["probe_init"],
                         "FP probe": 100 * m["fp"]["probe"], "target": 100 * m["target_acc"],
                         "steps to target": ", ".join("-" if s is None else str(s) for s in v["steps_to_target"]),
                         "reached": v["reached_share"], "area after 0": 100 * v["area_after_start"],
                         "final": f"{100 * v['final_avg_at_k']:.1f} ± {100 * v['final_avg_at_k_sd']:.1f}"})
    return pd.DataFrame(rows)


def qat_claims(res: Mapping[str, dict]) -> pd.DataFrame:
    """"Aligned calibration converges faster" (probe area after step 0) and "... ends higher" (final test
    accuracy), traces vs each other domain, paired over problems and seeds."""
    rows = []
    for r, m in res.items():
        for d, c in m["qat"]["aligned_vs"].items():
            for key, what in (("converges_faster", "converges faster (area after step 0)"),
                              ("ends_higher", "ends higher (final test Avg@k)")):
                v = c[key]
                rows.append({"reasoner": r, "claim": f"traces vs {d}: {what}",
                             "traces − vs, points": fmt_diff(v.get("diff")), "verdict": v["verdict"],
                             "falsified by": "an interval at or below 0", "why": v.get("why", ""),
                             "rise above own init, traces − vs": fmt_diff(c.get("rise_diff"))})
    return pd.DataFrame(rows)


def load_calib_curves(plots_dir: str | Path, reasoners: Sequence[str] | None = None) -> pd.DataFrame:
    """``reasoner, domain, seed, step, probe_acc, loss`` from ``<plots_dir>/<reasoner>/<domain>-s<seed>/``
    (``probe.tsv``, and ``loss.tsv`` where logged: NaN at steps without a loss)."""
    frames = []
    for f in sorted(Path(plots_dir).glob("*/*/probe.tsv")):
        m = _RUN.match(f.parent.name)
        reasoner = f.parent.parent.name
        if not m or (reasoners is not None and reasoner not in reasoners):
            continue
        c = pd.read_csv(f, sep="\t")
        loss = f.parent / "loss.tsv"
        if loss.exists():
            lv = pd.read_csv(loss, sep="\t")
            c = c.merge(lv[["step", lv.columns[-1]]].rename(columns={lv.columns[-1]: "loss"}), on="step", how="outer")
        else:
            c["loss"] = float("nan")
        frames.append(c.assign(reasoner=reasoner, domain=m["domain"], seed=int(m["seed"])))
    cols = ["reasoner", "domain", "seed", "step", "probe_acc", "loss"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols].sort_values(["reasoner", "domain", "seed", "step"])


def loss_table(curves: pd.DataFrame) -> pd.DataFrame:
    """The QAT training loss per reasoner and init domain (a description, not a claim): the mean logged loss over
    the budget and the last one, each as mean ± sd over seeds, the mean's ratio to the own-traces init's, and
    whether it is above the own-traces init's in every seed. The batches are a function of the seed and step, so
    two inits of the same seed see the same data in the same order."""
    loss = curves.dropna(subset=["loss"])
    if loss.empty:
        return pd.DataFrame(columns=["reasoner", "domain", "seeds", "mean loss", "last loss", "x traces",
                                     "above traces in every seed"])
    per = loss.sort_values("step").groupby(["reasoner", "domain", "seed"])["loss"].agg(area="mean", last="last")
    rows = []
    for (r, d), g in per.groupby(level=[0, 1], sort=False):
        g = g.droplevel([0, 1])
        own = per.loc[(r, "traces")] if (r, "traces") in per.index.droplevel(2) else None
        both = g.join(own, rsuffix="_own", how="inner") if own is not None else g.iloc[:0]
        rows.append({"reasoner": r, "domain": d, "seeds": len(g),
                     "mean loss": f"{g.area.mean():.4f} ± {g.area.std(ddof=1) if len(g) > 1 else 0:.4f}",
                     "last loss": f"{g['last'].mean():.4f} ± {g['last'].std(ddof=1) if len(g) > 1 else 0:.4f}",
                     "x traces": g.area.mean() / own.area.mean() if own is not None else float("nan"),
                     "above traces in every seed": bool(len(both)) and bool((both.area > both.area_own).all())})
    return pd.DataFrame(rows)
