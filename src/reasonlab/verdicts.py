"""Every claim's verdict across the reports, in one table (DVC stage ``verdicts``, ``stages/verdicts.py``).

Each paper report writes its per-claim verdicts as CSV under ``reports/<report>/tables/``; this module reads
them back and normalises every row to :data:`COLUMNS`:

* ``paper``        ``A`` (the Quality-Utility Paradox: reports ``paradox``, ``adaptation``) or ``B`` (low-bit QAT:
                   ``quant``, ``calibration``, ``two_bit``);
* ``claim``        the claim, in words;
* ``where``        the block it was tested in (family / reasoner, bits, objective, ...);
* ``statistic``    the point estimate with its interval (or standard error) as the report prints it, and for a
                   claim that is not testable, why;
* ``verdict``      exactly one of :data:`VERDICTS`; any other value in a source table is a :class:`ValueError`
                   naming the file and the row (nothing is mapped, trimmed or case-folded);
* ``falsified_by`` what would have refuted the claim, where the source table says (else empty);
* ``report``       the report page, as a link relative to the output folder;
* ``table``        the source CSV.

One function per source table (:data:`SOURCES`). ``paradox_claim.csv`` carries no verdict column; its verdicts
are derived here from the booleans the report decides by (:func:`paradox_claim`). ``paradox_ordering.csv`` carries
one verdict per ordering chain, repeated on each of the chain's rows (:func:`paradox_ordering` checks they agree).
For every table that carries a verdict per row, :func:`collect` checks that the normalised verdicts are the table's,
row by row and in order, so a ``holds`` cannot silently become anything else.

``reports/quant/tables/findings.csv`` is deliberately not read: its RQ1 / RQ2 rows aggregate the rows of
``rq1_sources.csv`` and ``rq2_claims.csv`` (read here), and its other rows are point comparisons without an
interval, pooled over reasoners and bit widths into ``yes / partly / no / n/a``, which has no faithful reading in
:data:`VERDICTS` (``partly``); two of those (low-bit PTQ collapses, QAT recovers half the loss) are tested with
paired intervals in ``reports/two_bit/tables/verdicts.csv``. The one claim it alone carries, "GPTQ is a better
PTQ than RTN" (a point comparison), is therefore not in this table.

Reads CSV only (pandas, no torch): the stage runs in seconds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

VERDICTS = ("holds", "does not hold", "not testable here")
COLUMNS = ["paper", "claim", "where", "statistic", "verdict", "falsified_by", "report", "table"]
PAPERS = {"A": "The Quality-Utility Paradox (arXiv 2606.16152)",
          "B": "What Makes Low-Bit QAT Work for Reasoning LLMs? (arXiv 2601.14888)"}
MEAN_FAMILY = "mean"  # reasonlab.paradox.tables.MEAN: the paradox tables' rows averaged over families


class VerdictTableError(ValueError):
    """A source table that cannot be normalised: an unknown verdict, a missing column, a malformed cell."""


# ----------------------------------------------------------------------------- cells
def _where(table: str, i: int, row: pd.Series | None = None, keys: tuple[str, ...] = ()) -> str:
    what = ", ".join(f"{k}={row[k]!r}" for k in keys if row is not None and k in row.index)
    return f"{table}, data row {i + 1}" + (f" ({what})" if what else "")


def check_verdict(value, table: str, i: int, column: str = "verdict", row: pd.Series | None = None,
                  keys: tuple[str, ...] = ()) -> str:
    """``value`` if it is one of :data:`VERDICTS` exactly, else a :class:`VerdictTableError` naming file and row."""
    if not isinstance(value, str) or value not in VERDICTS:
        raise VerdictTableError(f"{_where(table, i, row, keys)}: column {column!r} holds {value!r}, "
                                f"not one of {', '.join(repr(v) for v in VERDICTS)}")
    return value


def _bool(value: str, table: str, i: int, column: str) -> bool:
    if value in ("True", "False"):
        return value == "True"
    raise VerdictTableError(f"{table}, data row {i + 1}: column {column!r} holds {value!r}, not True or False")


def _num(value: str, table: str, i: int, column: str) -> float:
    if value == "":
        return math.nan
    try:
        return float(value)
    except ValueError:
        raise VerdictTableError(f"{table}, data row {i + 1}: column {column!r} holds {value!r}, not a number") from None


def _require(df: pd.DataFrame, table: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise VerdictTableError(f"{table}: missing column(s) {missing} (has {list(df.columns)})")


def _frame(rows: list[dict], paper: str, report: str, table: str) -> pd.DataFrame:
    out = pd.DataFrame([{"falsified_by": "", **r, "paper": paper, "report": report, "table": table} for r in rows],
                       columns=COLUMNS)
    return out.fillna("")


# ----------------------------------------------------------------------------- paper A
def paradox_claim(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/paradox/tables/paradox_claim.csv`` (:func:`reasonlab.paradox.tables.paradox_claim`): one claim per
    (family, metric). The RM row: the oracle's less favourable set scores higher than SLM-RFT; an ``<OBJ> Avg@k`` row:
    SLM-RFT's students beat the better oracle-trained student. The table has no verdict column; the verdict is the
    report's own per-row criterion: ``not testable here`` when ``testable`` is False (SLM-RFT does not clearly improve
    its base model), ``holds`` when ``clear`` (the difference exceeds twice its standard error), else ``does not hold``
    (the report's family-level summary calls a positive but unclear row "holds in direction"; per row that is not
    a verdict of the three)."""
    _require(df, table, ["family", "metric", "rft_value", "oracle_value", "oracle_set", "diff", "se", "clear",
                         "testable", "base_diff", "base_se"])
    rows = []
    for i, r in df.iterrows():
        fam, metric = r["family"], r["metric"]
        num = {c: _num(r[c], table, i, c) for c in ("rft_value", "oracle_value", "diff", "se", "base_diff", "base_se")}
        clear, testable = _bool(r["clear"], table, i, "clear"), _bool(r["testable"], table, i, "testable")
        at = "mean over families" if fam == MEAN_FAMILY else fam
        if metric == "RM score":
            claim = ("The oracle's traces score higher with the reward model than SLM-RFT's "
                     "(the lower-scored oracle set)")
            where = f"{at}, vs {r['oracle_set']}"
        elif metric.endswith(" Avg@k"):
            obj = metric[: -len(" Avg@k")]
            claim = ("Students fine-tuned on SLM-RFT reason better than on the oracle's traces "
                     "(Avg@k, the better oracle-trained student)")
            where = f"{at}, {obj}, vs {r['oracle_set']}"
        else:
            raise VerdictTableError(f"{_where(table, i, r, ('family',))}: unknown metric {metric!r}")
        stat = (f"{num['diff']:+.2f} (se {num['se']:.2f}; {r['oracle_set']} {num['oracle_value']:.2f} "
                f"vs SLM-RFT {num['rft_value']:.2f})")
        if not testable:
            verdict = "not testable here"
            stat = (f"SLM-RFT - base model {num['base_diff']:+.2f} points (se {num['base_se']:.2f}): the precondition "
                    f"needs more than twice the se; " + stat)
        else:
            verdict = "holds" if clear else "does not hold"
        rows.append({"claim": claim, "where": where, "statistic": stat, "verdict": verdict})
    return _frame(rows, "A", report, table)


def paradox_ordering(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/paradox/tables/paradox_ordering.csv`` (:func:`reasonlab.paradox.tables.ordering_checks`): the paper's
    full orderings, one claim per (family, metric) chain, with the chain's own ``verdict`` column (the same on each
    of its rows; :func:`reasonlab.paradox.tables.chain_verdict`: ``holds`` only when every adjacent pair is in the
    paper's order **and** outside the noise; a utility chain is ``not testable here`` where SLM-RFT does not clearly
    improve its base model)."""
    _require(df, table, ["family", "metric", "higher", "lower", "diff", "se", "note", "verdict"])
    rows = []
    for (fam, metric), sub in df.groupby(["family", "metric"], sort=False):
        parts, verdicts = [], set()
        for i, r in sub.iterrows():
            diff, se = _num(r["diff"], table, i, "diff"), _num(r["se"], table, i, "se")
            verdicts.add(check_verdict(r["verdict"], table, i, row=r, keys=("family", "metric")))
            note = f", {r['note']}" if r["note"] else ""  # the report's own: tie / within noise
            parts.append(f"{r['higher']} - {r['lower']} {diff:+.2f} (se {se:.2f}{note})")
        if len(verdicts) != 1:
            raise VerdictTableError(f"{table}: the rows of chain ({fam!r}, {metric!r}) disagree on its verdict: "
                                    f"{sorted(verdicts)}")
        chain = " > ".join([sub.iloc[0]["higher"]] + list(sub["lower"]))
        what = "reward-model score" if metric == "RM score" else f"utility ({metric})"
        at = "mean over families" if fam == MEAN_FAMILY else fam
        verdict, stat = verdicts.pop(), "; ".join(parts)
        if verdict == "not testable here":
            stat = "SLM-RFT does not clearly improve its base model; " + stat
        rows.append({"claim": f"The paper's {what} ordering {chain} (every adjacent pair outside the noise)",
                     "where": at, "statistic": stat, "verdict": verdict})
    return _frame(rows, "A", report, table)


def sweep_claims(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/adaptation/tables/sweep_claims.csv`` (:func:`reasonlab.paradox.adaptation_tables.sweep_claims`):
    "utility falls as drift rises", per family, objective and utility; a family without a sweep has one row with
    only ``family``, ``verdict`` and ``why``. (The table carries no falsification criterion: ``falsified_by`` is
    empty.)"""
    _require(df, table, ["family", "verdict", "why"])
    full = all(c in df.columns for c in ("objective", "utility", "Spearman (drift, utility)",
                                         "most - least drifted (pts)"))
    rows = []
    for i, r in df.iterrows():
        verdict = check_verdict(r["verdict"], table, i, row=r, keys=("family", "objective", "utility"))
        if full and r["objective"] != "":
            rows.append({"claim": f"Students' utility ({r['utility']}) falls as the traces' measured drift rises",
                         "where": f"{r['family']}, {r['objective'].upper()}",
                         "statistic": f"Spearman (drift, utility) {r['Spearman (drift, utility)']}; "
                                      f"most - least drifted {r['most - least drifted (pts)']} points",
                         "verdict": verdict})
        else:
            rows.append({"claim": "Students' utility falls as the traces' measured drift rises",
                         "where": r["family"], "statistic": r["why"], "verdict": verdict})
    return _frame(rows, "A", report, table)


# ----------------------------------------------------------------------------- paper B
_SOURCE = {"self": "SFT on the reasoner's own verified traces",
           "oracle": "SFT on a stronger writer's traces, the paper's setting",
           "reference": "SFT on the world's reference solutions"}


def rq1_sources(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/quant/tables/rq1_sources.csv`` (:func:`reasonlab.quant.tables.rq1_sources_table`): "KD beats SFT as
    the QAT objective" per (reasoner, bits, training-data source); statistic ``kd_minus_sft`` (points), with the
    precondition ``init_minus_fp`` when not testable and a note when ``opposite`` (SFT higher beyond the interval)."""
    _require(df, table, ["reasoner", "bits", "source", "kd_minus_sft", "verdict", "opposite", "init_minus_fp"])
    rows = []
    for i, r in df.iterrows():
        verdict = check_verdict(r["verdict"], table, i, row=r, keys=("reasoner", "bits", "source"))
        stat = f"KD - SFT {r['kd_minus_sft']} points"
        if verdict == "not testable here":
            stat += f"; precondition GPTQ init - FP {r['init_minus_fp']} (the init must lose accuracy)"
        if _bool(r["opposite"], table, i, "opposite"):
            stat += "; SFT higher beyond the interval"
        rows.append({"claim": f"KD beats SFT as the QAT objective ({_SOURCE.get(r['source'], 'source ' + r['source'])})",
                     "where": f"{r['reasoner']}, W{r['bits']}, source {r['source']}", "statistic": stat,
                     "verdict": verdict})
    return _frame(rows, "B", report, table)


RQ2_CLAIMS = (("converges_faster", "converges faster (probe area after step 0)"),
              ("ends_higher", "ends higher (test accuracy after the budget)"))


def rq2_claims(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/quant/tables/rq2_claims.csv`` (:func:`reasonlab.quant.tables.rq2_claims_table`): two claims per row,
    ``converges_faster`` / ``converges_faster_verdict`` and ``ends_higher`` / ``ends_higher_verdict``."""
    _require(df, table, ["reasoner", "bits", "objective", "init", "vs"]
             + [c for key, _ in RQ2_CLAIMS for c in (key, f"{key}_verdict")])
    rows = []
    for i, r in df.iterrows():
        for key, label in RQ2_CLAIMS:
            verdict = check_verdict(r[f"{key}_verdict"], table, i, f"{key}_verdict", row=r,
                                    keys=("reasoner", "bits", "objective", "init"))
            rows.append({"claim": f"{r['init'].upper()} init {label} than {r['vs'].upper()} init",
                         "where": f"{r['reasoner']}, W{r['bits']}, {r['objective'].upper()}",
                         "statistic": f"{r['init']} - {r['vs']} {r[key]} points", "verdict": verdict})
    return _frame(rows, "B", report, table)


_PTQ_FP, _PTQ_DIFF = "FP − PTQ(vs), points", "traces − vs, points"  # the report's headers (U+2212 minus)


def ptq_claims(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/calibration/tables/ptq_claims.csv`` (:func:`reasonlab.quant.calib_tables.ptq_claims`): "calibrating on
    the reasoner's own traces helps PTQ alone", per reasoner, PTQ model and other calibration domain."""
    _require(df, table, ["reasoner", "model", "vs", _PTQ_FP, _PTQ_DIFF, "verdict"])
    rows = []
    for i, r in df.iterrows():
        verdict = check_verdict(r["verdict"], table, i, row=r, keys=("reasoner", "model", "vs"))
        rows.append({"claim": f"PTQ calibrated on the reasoner's own traces beats PTQ calibrated on {r['vs']}",
                     "where": f"{r['reasoner']}, {r['model']}",
                     "statistic": f"traces - {r['vs']} {r[_PTQ_DIFF]} points "
                                  f"(FP - PTQ on {r['vs']} {r[_PTQ_FP]} points)",
                     "verdict": verdict})
    return _frame(rows, "B", report, table)


_QAT_DIFF = "traces − vs, points"


def qat_claims(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/calibration/tables/qat_claims.csv`` (:func:`reasonlab.quant.calib_tables.qat_claims`): QAT from the
    init calibrated on own traces "converges faster" / "ends higher" than from another domain's init; the table's
    ``falsified by`` becomes ``falsified_by``, its ``why`` (not testable) joins the statistic."""
    _require(df, table, ["reasoner", "claim", _QAT_DIFF, "verdict", "falsified by", "why"])
    rows = []
    for i, r in df.iterrows():
        verdict = check_verdict(r["verdict"], table, i, row=r, keys=("reasoner", "claim"))
        head, sep, what = r["claim"].partition(": ")
        other = head[len("traces vs "):] if sep and head.startswith("traces vs ") else ""
        claim = (f"QAT from the init calibrated on own traces {what} than from the init calibrated on {other}"
                 if other else f"QAT, calibration on own traces: {r['claim']}")
        stat = f"traces - {other or 'vs'} {r[_QAT_DIFF]} points" + (f"; {r['why']}" if r["why"] else "")
        rows.append({"claim": claim, "where": r["reasoner"], "statistic": stat, "verdict": verdict,
                     "falsified_by": r["falsified by"]})
    return _frame(rows, "B", report, table)


def two_bit_verdicts(df: pd.DataFrame, *, table: str, report: str) -> pd.DataFrame:
    """``reports/two_bit/tables/verdicts.csv`` (notebook ``two_bit.py``): already ``claim, where, statistic,
    verdict``."""
    _require(df, table, ["claim", "where", "statistic", "verdict"])
    rows = [{"claim": r["claim"], "where": r["where"], "statistic": r["statistic"],
             "verdict": check_verdict(r["verdict"], table, i, row=r, keys=("claim", "where"))}
            for i, r in df.iterrows()]
    return _frame(rows, "B", report, table)


# ----------------------------------------------------------------------------- the sources
@dataclass(frozen=True)
class Source:
    report: str                         # reports/<report>/, page <report>/<report>.html
    table: str                          # reports/<report>/tables/<table>.csv
    normalise: Callable[..., pd.DataFrame]
    verdict_columns: tuple[str, ...]    # the table's own verdict columns, row-major in the order rows come out


SOURCES: tuple[Source, ...] = (
    Source("paradox", "paradox_claim", paradox_claim, ()),
    Source("paradox", "paradox_ordering", paradox_ordering, ()),
    Source("adaptation", "sweep_claims", sweep_claims, ("verdict",)),
    Source("quant", "rq1_sources", rq1_sources, ("verdict",)),
    Source("quant", "rq2_claims", rq2_claims, ("converges_faster_verdict", "ends_higher_verdict")),
    Source("calibration", "ptq_claims", ptq_claims, ("verdict",)),
    Source("calibration", "qat_claims", qat_claims, ("verdict",)),
    Source("two_bit", "verdicts", two_bit_verdicts, ("verdict",)),
)
REPORTS = tuple(dict.fromkeys(s.report for s in SOURCES))

# Where a report writes a table only under a condition (an older run's metrics): said in the missing-table error.
_CONDITIONAL = {("quant", "rq1_sources"): "the quant notebook writes it only when the QAT metrics carry per-source "
                                          "statistics (re-run quant_qat and report_quant)",
                ("quant", "rq2_claims"): "the quant notebook writes it only when the QAT metrics carry RQ2 statistics "
                                         "(re-run quant_qat and report_quant)"}


def read_table(path: str | Path) -> pd.DataFrame:
    """A report table as strings, exactly as written (empty cells ``""``; nothing parsed as NaN or bool); a file
    with no columns at all (pandas' CSV of an empty frame) is an empty frame."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as e:
        raise VerdictTableError(f"{Path(path).as_posix()}: not a readable CSV ({e})") from None


def check_preserved(df: pd.DataFrame, out: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    """The normalised verdicts are the source table's verdict cells, row by row and column by column, in order."""
    want = [str(v) for _, r in df.iterrows() for v in (r[c] for c in columns)] if columns and len(df) else []
    got = list(out["verdict"])
    if want != got:
        bad = next((k for k, (w, g) in enumerate(zip(want, got)) if w != g), min(len(want), len(got)))
        raise VerdictTableError(f"{table}: the normalised verdicts are not the table's ({len(want)} in the table, "
                                f"{len(got)} normalised; first difference at claim {bad + 1}: "
                                f"{want[bad] if bad < len(want) else None!r} became "
                                f"{got[bad] if bad < len(got) else None!r})")


def normalise(source: Source, reports_dir: str | Path, link_from: str | Path | None = None) -> pd.DataFrame:
    """One source table as :data:`COLUMNS` (its verdicts checked against the table's own, where it has them)."""
    reports_dir = Path(reports_dir)
    path = reports_dir / source.report / "tables" / f"{source.table}.csv"
    if not path.exists():
        why = _CONDITIONAL.get((source.report, source.table))
        raise FileNotFoundError(f"missing table {path.as_posix()} in report {source.report!r}"
                                + (f" ({why})" if why else ""))
    table = path.as_posix()
    page = os.path.relpath(reports_dir / source.report / f"{source.report}.html",
                           Path(link_from) if link_from is not None else reports_dir)
    df = read_table(path)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = source.normalise(df, table=table, report=Path(page).as_posix())
    if source.verdict_columns:
        check_preserved(df, out, source.verdict_columns, table)
    for k, v in enumerate(out["verdict"]):  # the derived ones too
        check_verdict(v, table, k, "normalised verdict")
    return out


def collect(reports_dir: str | Path, link_from: str | Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Every claim of every report that exists under ``reports_dir``: ``(table, skipped)``. A report folder that does
    not exist is skipped (its name listed in ``skipped``); a missing table in a report folder that exists is a
    :class:`FileNotFoundError` naming its path. ``link_from``: the folder the ``report`` links are relative to
    (the output folder; default ``reports_dir``)."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise FileNotFoundError(f"no reports folder {reports_dir.as_posix()}")
    frames, skipped = [], []
    for report in REPORTS:
        if not (reports_dir / report).is_dir():
            skipped.append(report)
            continue
        frames += [normalise(s, reports_dir, link_from) for s in SOURCES if s.report == report]
    frames = [f for f in frames if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return table[COLUMNS], skipped


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per paper: how many claims hold, do not hold, are not testable here, and all of them."""
    rows = []
    for paper in PAPERS:
        v = table.loc[table["paper"] == paper, "verdict"]
        rows.append({"paper": paper, **{k: int((v == k).sum()) for k in VERDICTS}, "claims": len(v)})
    return pd.DataFrame(rows, columns=["paper", *VERDICTS, "claims"])


def to_csv(table: pd.DataFrame) -> str:
    return table[COLUMNS].to_csv(index=False)


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, skipped: list[str] | None = None) -> str:
    """The summary per paper, the skipped reports, then every claim (the report as a link)."""
    lines = ["# Every claim's verdict", ""]
    lines += [f"- Paper {p}: {title}" for p, title in PAPERS.items()]
    lines += ["", summary(table).to_markdown(index=False), ""]
    if skipped:
        lines += ["Reports not built (skipped): " + ", ".join(f"`{s}`" for s in skipped) + ".", ""]
    show = table[COLUMNS].copy()
    show["report"] = [f"[{Path(p).stem}]({p})" for p in show["report"]]
    show = show.map(_md_cell) if len(show) else show
    lines += [show.to_markdown(index=False) if len(show) else "_No claims: no report has been built._", ""]
    return "\n".join(lines)


__all__ = ["COLUMNS", "PAPERS", "REPORTS", "SOURCES", "VERDICTS", "Source", "VerdictTableError", "check_preserved",
           "check_verdict", "collect", "normalise", "paradox_claim", "paradox_ordering", "ptq_claims", "qat_claims",
           "read_table", "rq1_sources", "rq2_claims", "summary", "sweep_claims", "to_csv", "to_markdown",
           "two_bit_verdicts"]
