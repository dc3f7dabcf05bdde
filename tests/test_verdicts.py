"""One table of every claim's verdict (reasonlab.verdicts, stage `verdicts`), on fixture tables laid out as the
reports write them (headers and rows copied from real runs: the tiny run's quant / calibration / two_bit reports,
the test pipelines' paradox and adaptation reports)."""

import io
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, stage_argv
from reasonlab import verdicts as V

# ----------------------------------------------------------------------------- fixture tables (real layouts)
PARADOX_CLAIM = """\
family,metric,rft_value,oracle_value,oracle_set,diff,se,clear,testable,base_diff,base_se
qwen,RM score,-0.5219149192174276,-0.2426460161805153,Oracle-Refined,0.2792689030369123,0.1898960799587016,False,True,,
qwen,SFT Avg@k,0.0,0.0,Oracle-Refined,0.0,0.0,False,False,0.0,0.0
llama,RM score,-0.6676129698753357,0.07183808833360672,Oracle-Refined,0.7394510582089424,0.01,True,True,,
llama,SFT Avg@k,8.333333333333332,3.125,Oracle-Synthesized,5.208333333333332,1.2,True,True,3.1,1.0
llama,DFT Avg@k,8.333333333333332,8.333333333333332,Oracle-Refined,0.0,0.0,False,True,2.5,1.0
mean,RM score,-0.39702811837196356,-0.04072233703401354,Oracle-Refined,0.35630578133795,0.07100632239333475,True,True,,
"""
PARADOX_ORDERING = """\
family,metric,higher,lower,higher_value,lower_value,diff,se,note,holds,clear,testable,verdict
qwen,RM score,Oracle-Synthesized,Oracle-Refined,-0.2426460161805153,-0.2426460161805153,0.0,0.17575458390207144,tie,False,False,True,does not hold
qwen,RM score,Oracle-Refined,SLM-RFT,-0.2426460161805153,-0.5219149192174276,0.2792689030369123,0.1898960799587016,within noise,True,False,True,does not hold
qwen,DFT Avg@k,Style-Aligned,SLM-RFT,8.333333333333332,4.166666666666666,4.166666666666666,5.509373202969677,within noise,True,False,True,does not hold
qwen,DFT Avg@k,SLM-RFT,Oracle-Refined,4.166666666666666,0.0,4.166666666666666,1.0,,True,True,True,does not hold
qwen,DFT Avg@k,Oracle-Refined,Oracle-Synthesized,1.0,0.0,1.0,0.2,,True,True,True,does not hold
"""
SWEEP_CLAIMS = """\
family,objective,utility,log-ppl rise (last - first),"Spearman (drift, utility)",Spearman vs Q1 ppl,Spearman vs dial level,most - least drifted (pts),order axis - level 0 (pts),verdict,why
qwen,sft,answer Avg@k,"+0.690 [+0.561, +0.759]","-0.60 [-1.00, -0.50]","-1.00 [-1.00, -0.60]","-1.00 [-1.00, -0.60]","-6.5 [-10.0, -3.0]","-0.5 [-2.4, +1.4]",holds,"rank correlation -0.60 [-1.00, -0.50], last minus first -6.5 points [-10.0, -3.0]"
llama,sft,answer Avg@k,"+1.087 [+1.087, +1.087]","+0.00 [+0.00, +0.00]","+0.87 [+0.87, +0.87]","+0.87 [+0.87, +0.87]","+16.7 [+0.0, +33.8]","+0.0 [+0.0, +0.0]",does not hold,"rank correlation +0.00 [+0.00, +0.00], last minus first +16.7 points [+0.0, +33.8]"
deepseek,,,,,,,,,not testable here,no problem ids survived into the five sets
"""
SWEEP_CLAIMS_UNTESTABLE = """\
family,verdict,why
qwen,not testable here,no problem ids survived into the five sets
"""
RQ1_SOURCES = """\
reasoner,bits,source,qat_sft,qat_kd,control_sft,kd_minus_sft,verdict,opposite,sft_minus_control,kd_minus_fp,control_minus_fp,init_minus_fp
reasoner_m,4,self,12.847222222222221,14.149305555555555,14.149305555555555,"+1.3 [-1.3, +3.8]",not testable here,False,"-1.3 [-3.7, +1.2]","+0.9 [-0.6, +2.3]","+0.9 [-2.3, +3.9]","+1.0 [-0.3, +2.6]"
reasoner_s,2,oracle,2.1,5.5,0.3,"+3.4 [+0.8, +6.2]",holds,False,"+1.7 [+0.3, +3.2]","-4.9 [-9.0, -0.9]","-9.7 [-13.6, -5.8]","-5.2 [-9.1, -1.6]"
reasoner_s,2,self,5.555555555555555,6.597222222222222,10.677083333333332,"+1.0 [-1.0, +3.4]",does not hold,False,"-5.1 [-8.3, -1.6]","-3.3 [-7.0, +0.6]","+0.8 [-1.2, +2.9]","-4.9 [-8.6, -1.3]"
"""
RQ2_CLAIMS = """\
reasoner,bits,objective,init,vs,start,baseline_start,control,converges_faster,converges_faster_verdict,ends_higher,ends_higher_verdict,rise_diff,reached
reasoner_s,2,sft,gptq,rtn,5.729166666666666,1.5625,13.541666666666666,"+3.1 [+0.4, +6.3]",holds,"+2.4 [-0.3, +5.4]",does not hold,"-1.1 [-3.8, +1.5]","gptq 0%, rtn 0%"
reasoner_s,2,kd,awq,rtn,3.3854166666666665,1.5625,12.239583333333332,"+0.6 [-1.3, +2.3]",does not hold,"+1.7 [+0.0, +3.4]",holds,"-1.3 [-4.4, +1.7]","awq 0%, rtn 0%"
"""
PTQ_CLAIMS = """\
reasoner,model,vs,"FP − PTQ(vs), points","traces − vs, points",verdict,why
reasoner_m,GPTQ-W3,other_dialect,"+0.0 [-2.6, +2.6]","-0.3 [-3.4, +2.9]",not testable here,PTQ calibrated on other_dialect loses +0.000 (se 0.013) against FP: nothing for a better calibration to win
reasoner_m,GPTQ-W2,general,"+6.2 [+1.8, +10.9]","+3.6 [-0.3, +7.8]",does not hold,
reasoner_s,GPTQ-W2,general,"+8.6 [+4.4, +12.8]","+3.9 [+1.6, +6.5]",holds,
"""
QAT_CLAIMS = """\
reasoner,claim,"traces − vs, points",verdict,falsified by,why,"rise above own init, traces − vs"
reasoner_m,traces vs other_dialect: converges faster (area after step 0),"+1.6 [-1.3, +4.5]",does not hold,an interval at or below 0,,"+0.3 [-3.0, +3.8]"
reasoner_m,traces vs general: converges faster (area after step 0),"+6.1 [+2.9, +9.8]",holds,an interval at or below 0,,"-1.1 [-4.3, +2.1]"
reasoner_s,traces vs general: ends higher (final test Avg@k),"+0.0 [+0.0, +0.0]",not testable here,an interval at or below 0,"neither init starts below the FP control by 2 se on the validation probe (FP 0.000; traces 0.000, general 0.000)","+0.0 [+0.0, +0.0]"
"""
TWO_BIT = """\
claim,where,statistic,verdict
PTQ (GPTQ) breaks W3: keeps < 50% of FP,reasoner_s,"1.13 [0.83, 1.59]",does not hold
QAT recovers >= 50% of GPTQ's loss,reasoner_m,"PTQ loses nothing measurable against the reference (+0.0 [-2.1, +2.1] points): there is nothing to recover",not testable here
smaller models keep less at W3 (PTQ),reasoner_s_vs_reasoner_m,"GPTQ kept share, smaller - larger 0.13 [-0.20, 0.61]; QAT -0.03 [-0.31, 0.34]",holds
"""

TABLES = {("paradox", "paradox_claim"): PARADOX_CLAIM, ("paradox", "paradox_ordering"): PARADOX_ORDERING,
          ("adaptation", "sweep_claims"): SWEEP_CLAIMS, ("quant", "rq1_sources"): RQ1_SOURCES,
          ("quant", "rq2_claims"): RQ2_CLAIMS, ("calibration", "ptq_claims"): PTQ_CLAIMS,
          ("calibration", "qat_claims"): QAT_CLAIMS, ("two_bit", "verdicts"): TWO_BIT}
# the tables that carry their own verdicts: (report, table) -> the verdict cells, row-major, as written above
OWN_VERDICTS = {("adaptation", "sweep_claims"): ["holds", "does not hold", "not testable here"],
                ("quant", "rq1_sources"): ["not testable here", "holds", "does not hold"],
                ("quant", "rq2_claims"): ["holds", "does not hold", "does not hold", "holds"],
                ("calibration", "ptq_claims"): ["not testable here", "does not hold", "holds"],
                ("calibration", "qat_claims"): ["does not hold", "holds", "not testable here"],
                ("two_bit", "verdicts"): ["does not hold", "not testable here", "holds"]}


def write_reports(root: Path, tables: dict | None = None, skip: tuple[str, ...] = ()) -> Path:
    reports = root / "reports"
    for (report, name), text in (TABLES if tables is None else tables).items():
        if report in skip:
            continue
        d = reports / report / "tables"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.csv").write_text(text)
    reports.mkdir(parents=True, exist_ok=True)
    return reports


def _rows(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["table"].str.endswith(f"/{name}.csv")].reset_index(drop=True)


# ----------------------------------------------------------------------------- normalisation
def test_collect_normalises_every_table(tmp_path):
    table, skipped = V.collect(write_reports(tmp_path))
    assert skipped == []
    assert list(table.columns) == V.COLUMNS
    assert set(table["verdict"]) <= set(V.VERDICTS) and (table["claim"] != "").all() and (table["where"] != "").all()
    counts = table.groupby("table").size().rename(lambda p: Path(p).stem).to_dict()
    # paradox_ordering: one claim per (family, metric) chain; rq2_claims: two claims per row
    assert counts == {"paradox_claim": 6, "paradox_ordering": 2, "sweep_claims": 3, "rq1_sources": 3,
                      "rq2_claims": 4, "ptq_claims": 3, "qat_claims": 3, "verdicts": 3}
    assert set(table.loc[table["table"].str.contains("/paradox/|/adaptation/"), "paper"]) == {"A"}
    assert set(table.loc[~table["table"].str.contains("/paradox/|/adaptation/"), "paper"]) == {"B"}
    # the report link is relative to the reports folder by default, the table is the source path
    quant = _rows(table, "rq1_sources")
    assert set(quant["report"]) == {"quant/quant.html"}
    assert set(quant["table"]) == {(tmp_path / "reports/quant/tables/rq1_sources.csv").as_posix()}


def test_paradox_claim_verdicts_follow_the_reports_criterion(tmp_path):
    t = _rows(V.collect(write_reports(tmp_path))[0], "paradox_claim")
    assert list(t["verdict"]) == ["does not hold",      # qwen RM: +0.28, se 0.19, not clear
                                  "not testable here",  # qwen SFT: SLM-RFT does not improve its base model
                                  "holds", "holds",     # llama RM and SFT: clear
                                  "does not hold",      # llama DFT: a tie
                                  "holds"]              # mean RM
    assert t.loc[0, "where"] == "qwen, vs Oracle-Refined" and t.loc[3, "where"] == "llama, SFT, vs Oracle-Synthesized"
    assert t.loc[0, "statistic"].startswith("+0.28 (se 0.19; Oracle-Refined -0.24 vs SLM-RFT -0.52)")
    assert "SLM-RFT - base model +0.00 points (se 0.00)" in t.loc[1, "statistic"]
    assert t.loc[5, "where"].startswith("mean over families")
    assert (t["falsified_by"] == "").all()


def test_paradox_claim_rows_agree_with_the_reports_family_verdict(tmp_path):
    """Per family, the rows' verdicts say what the report's summary says (reasonlab.paradox.tables.claim_verdict):
    every row holds <=> "holds"; a utility row not testable <=> "not testable here"."""
    from reasonlab.paradox.tables import claim_verdict

    src = pd.read_csv(write_reports(tmp_path) / "paradox/tables/paradox_claim.csv")
    ours = _rows(V.collect(tmp_path / "reports")[0], "paradox_claim")
    ours["family"] = src["family"]
    for fam, sub in src.groupby("family", sort=False):
        mine = list(ours.loc[ours["family"] == fam, "verdict"])
        theirs = claim_verdict(sub)
        assert (theirs == "holds") == all(v == "holds" for v in mine), (fam, theirs, mine)
        assert (theirs == "not testable here") == ("not testable here" in mine), (fam, theirs, mine)


def test_paradox_ordering_is_one_claim_per_chain(tmp_path):
    t = _rows(V.collect(write_reports(tmp_path))[0], "paradox_ordering")
    assert list(t["where"]) == ["qwen", "qwen"]
    rm, dft = t.iloc[0], t.iloc[1]
    assert "Oracle-Synthesized > Oracle-Refined > SLM-RFT" in rm["claim"] and rm["verdict"] == "does not hold"
    assert "Oracle-Synthesized - Oracle-Refined +0.00 (se 0.18, tie)" in rm["statistic"]
    assert "Style-Aligned > SLM-RFT > Oracle-Refined > Oracle-Synthesized" in dft["claim"]
    assert dft["verdict"] == "does not hold"  # every pair in order on point estimates, one within noise
    assert "Style-Aligned - SLM-RFT +4.17 (se 5.51, within noise)" in dft["statistic"]


ORDERING_PRECONDITION = """\
family,metric,higher,lower,higher_value,lower_value,diff,se,note,holds,clear,testable,verdict
qwen,SFT Avg@k,Style-Aligned,SLM-RFT,9.0,5.0,4.0,1.0,,True,True,False,not testable here
qwen,SFT Avg@k,SLM-RFT,Oracle-Refined,5.0,1.0,4.0,1.0,,True,True,False,not testable here
llama,SFT Avg@k,Style-Aligned,SLM-RFT,9.0,5.0,4.0,1.0,,True,True,True,holds
llama,SFT Avg@k,SLM-RFT,Oracle-Refined,5.0,1.0,4.0,1.0,,True,True,True,holds
"""


def test_paradox_ordering_reads_the_reports_chain_verdict(tmp_path):
    """The chain's verdict is the report's own (reasonlab.paradox.tables.chain_verdict, tested there): the same
    numbers hold for llama and are not testable for qwen, whose table says its precondition failed."""
    t = _rows(V.collect(write_reports(tmp_path, {("paradox", "paradox_claim"): PARADOX_CLAIM,
                                                   ("paradox", "paradox_ordering"): ORDERING_PRECONDITION}))[0],
              "paradox_ordering")
    assert list(t["where"]) == ["qwen", "llama"]
    assert list(t["verdict"]) == ["not testable here", "holds"]
    assert t.iloc[0]["statistic"].startswith("SLM-RFT does not clearly improve its base model")


def _ordering(table: str) -> dict:
    return {("paradox", "paradox_claim"): PARADOX_CLAIM, ("paradox", "paradox_ordering"): table}


def test_paradox_ordering_rejects_a_bad_or_split_chain_verdict(tmp_path):
    split = ORDERING_PRECONDITION.replace("True,True,True,holds\n", "True,True,True,does not hold\n", 1)
    with pytest.raises(ValueError, match=r"chain \('llama', 'SFT Avg@k'\) disagree on its verdict"):
        V.collect(write_reports(tmp_path, _ordering(split)))
    bad = ORDERING_PRECONDITION.replace("True,True,True,holds\n", "True,True,True,held\n", 1)
    with pytest.raises(ValueError, match=r"paradox_ordering\.csv, data row 3 \(family='llama', metric='SFT Avg@k'\): "
                                         r"column 'verdict' holds 'held'"):
        V.collect(write_reports(tmp_path / "b", _ordering(bad)))
    old = "\n".join(",".join(x.split(",")[:10]) for x in ORDERING_PRECONDITION.splitlines()) + "\n"
    with pytest.raises(ValueError, match=r"paradox_ordering\.csv: missing column\(s\) \['verdict'\]"):
        V.collect(write_reports(tmp_path / "c", _ordering(old)))


def test_sweep_claims_both_layouts(tmp_path):
    t = _rows(V.collect(write_reports(tmp_path))[0], "sweep_claims")
    assert list(t["where"]) == ["qwen, SFT", "llama, SFT", "deepseek"]
    assert t.loc[0, "statistic"] == ("Spearman (drift, utility) -0.60 [-1.00, -0.50]; "
                                     "most - least drifted -6.5 [-10.0, -3.0] points")
    assert t.loc[2, "statistic"] == "no problem ids survived into the five sets"
    only = write_reports(tmp_path / "b", {("adaptation", "sweep_claims"): SWEEP_CLAIMS_UNTESTABLE})
    u = V.collect(only)[0]
    assert list(u["verdict"]) == ["not testable here"] and list(u["where"]) == ["qwen"]


def test_quant_calibration_two_bit_rows(tmp_path):
    table = V.collect(write_reports(tmp_path))[0]
    rq1 = _rows(table, "rq1_sources")
    assert rq1.loc[0, "where"] == "reasoner_m, W4, source self"
    assert rq1.loc[0, "statistic"] == ("KD - SFT +1.3 [-1.3, +3.8] points; precondition GPTQ init - FP "
                                       "+1.0 [-0.3, +2.6] (the init must lose accuracy)")
    assert rq1.loc[1, "statistic"] == "KD - SFT +3.4 [+0.8, +6.2] points" and "stronger writer" in rq1.loc[1, "claim"]
    rq2 = _rows(table, "rq2_claims")
    assert list(rq2["claim"]) == ["GPTQ init converges faster (probe area after step 0) than RTN init",
                                  "GPTQ init ends higher (test accuracy after the budget) than RTN init",
                                  "AWQ init converges faster (probe area after step 0) than RTN init",
                                  "AWQ init ends higher (test accuracy after the budget) than RTN init"]
    assert list(rq2["statistic"])[:2] == ["gptq - rtn +3.1 [+0.4, +6.3] points", "gptq - rtn +2.4 [-0.3, +5.4] points"]
    assert list(rq2["where"]) == ["reasoner_s, W2, SFT"] * 2 + ["reasoner_s, W2, KD"] * 2
    ptq = _rows(table, "ptq_claims")
    assert ptq.loc[2, "statistic"] == "traces - general +3.9 [+1.6, +6.5] points (FP - PTQ on general +8.6 [+4.4, +12.8] points)"
    qat = _rows(table, "qat_claims")
    assert qat.loc[1, "claim"] == ("QAT from the init calibrated on own traces converges faster (area after step 0) "
                                   "than from the init calibrated on general")
    assert set(qat["falsified_by"]) == {"an interval at or below 0"}
    assert qat.loc[2, "statistic"].startswith("traces - general +0.0 [+0.0, +0.0] points; neither init")
    tb = _rows(table, "verdicts")
    assert list(tb["statistic"])[0] == "1.13 [0.83, 1.59]" and list(tb["where"])[2] == "reasoner_s_vs_reasoner_m"


# ----------------------------------------------------------------------------- a holds stays a holds
@pytest.mark.parametrize("key", list(OWN_VERDICTS), ids=["/".join(k) for k in OWN_VERDICTS])
def test_every_verdict_is_the_tables_own(tmp_path, key):
    t = _rows(V.collect(write_reports(tmp_path))[0], key[1])
    assert list(t["verdict"]) == OWN_VERDICTS[key]
    assert "holds" in OWN_VERDICTS[key]  # the fixture has a holds to lose


@pytest.mark.parametrize("bug", ["flip", "swap", "drop"])
def test_a_normaliser_that_changes_a_verdict_is_caught(tmp_path, monkeypatch, bug):
    """A bug in a normaliser (a holds turned into another verdict, two rows swapped, a row lost) is an error."""
    real = V.rq2_claims

    def buggy(df, **kw):
        out = real(df, **kw)
        if bug == "flip":
            out.loc[out["verdict"] == "holds", "verdict"] = "does not hold"
        elif bug == "swap":
            out = out.iloc[[1, 0, 2, 3]].reset_index(drop=True)
        else:
            out = out.iloc[1:].reset_index(drop=True)
        return out

    sources = tuple(V.Source(s.report, s.table, buggy, s.verdict_columns) if s.table == "rq2_claims" else s
                    for s in V.SOURCES)
    monkeypatch.setattr(V, "SOURCES", sources)
    reports = write_reports(tmp_path)
    with pytest.raises(V.VerdictTableError, match=r"rq2_claims\.csv: the normalised verdicts are not the table's"):
        V.collect(reports)


def test_check_preserved_passes_the_real_order():
    df = pd.DataFrame({"a": ["holds", "not testable here"], "b": ["does not hold", "holds"]})
    out = pd.DataFrame({"verdict": ["holds", "does not hold", "not testable here", "holds"]})
    V.check_preserved(df, out, ("a", "b"), "t.csv")
    with pytest.raises(V.VerdictTableError, match="claim 2: 'does not hold' became 'not testable here'"):
        V.check_preserved(df, out.iloc[[0, 2, 1, 3]].reset_index(drop=True), ("a", "b"), "t.csv")


# ----------------------------------------------------------------------------- the verdict vocabulary
BAD = ["Holds", "holds ", "holds in direction, not clearly in every metric", "–", "", "yes", "partly"]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("key", list(OWN_VERDICTS), ids=["/".join(k) for k in OWN_VERDICTS])
def test_an_unknown_verdict_names_file_and_row(tmp_path, key, bad):
    text = TABLES[key]
    lines = text.splitlines(keepends=True)
    # replace the verdict of the second data row (the first verdict cell on it, as written in the fixture)
    want = OWN_VERDICTS[key][2 if key == ("quant", "rq2_claims") else 1]
    assert want in lines[2]
    cell = f",{want},"
    quoted = '"' + bad + '"'  # as pandas writes a cell with a comma
    lines[2] = (lines[2].replace(cell, f",{quoted},", 1) if cell in lines[2]
                else lines[2].replace(f",{want}\n", f",{quoted}\n"))
    assert lines[2] != text.splitlines(keepends=True)[2]
    reports = write_reports(tmp_path, {**TABLES, key: "".join(lines)})
    path = (reports / key[0] / "tables" / f"{key[1]}.csv").as_posix()
    with pytest.raises(ValueError) as e:
        V.collect(reports)
    msg = str(e.value)
    assert path in msg and "data row 2" in msg and repr(bad) in msg, msg


def test_a_malformed_paradox_cell_is_an_error(tmp_path):
    bad = PARADOX_CLAIM.replace(",False,True,,\n", ",maybe,True,,\n", 1)
    with pytest.raises(ValueError, match=r"paradox_claim\.csv, data row 1: column 'clear' holds 'maybe'"):
        V.collect(write_reports(tmp_path, {("paradox", "paradox_claim"): bad,
                                           ("paradox", "paradox_ordering"): PARADOX_ORDERING}))
    missing = pd.read_csv(io.StringIO(TWO_BIT)).drop(columns=["statistic", "verdict"]).to_csv(index=False)
    with pytest.raises(ValueError, match=r"verdicts\.csv: missing column\(s\) \['statistic', 'verdict'\]"):
        V.collect(write_reports(tmp_path / "m", {("two_bit", "verdicts"): missing}))


# ----------------------------------------------------------------------------- missing reports and tables
def test_a_report_not_built_is_skipped_and_listed(tmp_path):
    reports = write_reports(tmp_path, skip=("paradox", "adaptation", "two_bit"))
    table, skipped = V.collect(reports)
    assert skipped == ["paradox", "adaptation", "two_bit"]
    assert set(table["paper"]) == {"B"} and len(table) == 3 + 4 + 3 + 3
    md = V.to_markdown(table, skipped)
    assert "Reports not built (skipped): `paradox`, `adaptation`, `two_bit`." in md
    s = V.summary(table).set_index("paper")
    assert s.loc["A"].tolist() == [0, 0, 0, 0]
    assert s.loc["B"].tolist() == [5, 5, 3, 13]


def test_a_missing_table_in_a_built_report_is_an_error(tmp_path):
    reports = write_reports(tmp_path)
    (reports / "quant/tables/rq2_claims.csv").unlink()
    (reports / "quant/tables/findings.csv").write_text("finding,evidence,holds\n")  # not read: no substitute
    with pytest.raises(FileNotFoundError, match=r"missing table .*reports/quant/tables/rq2_claims\.csv"):
        V.collect(reports)
    (reports / "paradox/tables/paradox_ordering.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"reports/paradox/tables/paradox_ordering\.csv"):
        V.collect(reports)


def test_empty_tables_give_no_claims(tmp_path):
    """A report with no data writes a header-only table (paradox) or pandas' CSV of a frame without columns."""
    tables = {**TABLES, ("paradox", "paradox_claim"): PARADOX_CLAIM.splitlines()[0] + "\n",
              ("paradox", "paradox_ordering"): PARADOX_ORDERING.splitlines()[0] + "\n",
              ("calibration", "ptq_claims"): "\n"}
    table, _ = V.collect(write_reports(tmp_path, tables))
    assert not table["table"].str.contains("paradox_|ptq_claims").any()
    assert len(table) == 3 + 3 + 4 + 3 + 3


# ----------------------------------------------------------------------------- the stage
def test_stage_writes_csv_and_markdown_as_dvc_yaml_calls_it(tmp_path, monkeypatch, capsys):
    write_reports(tmp_path, skip=("adaptation",))
    monkeypatch.chdir(tmp_path)
    argv = stage_argv("verdicts", {})
    assert argv[0] == "stages/verdicts.py"
    monkeypatch.setattr(sys, "argv", [str(ROOT / argv[0]), *argv[1:]])
    runpy.run_path(str(ROOT / argv[0]), run_name="__main__")
    out = tmp_path / "reports/verdicts"
    assert sorted(p.name for p in out.iterdir()) == ["verdicts.csv", "verdicts.md"]
    assert not (tmp_path / "reports/verdicts.tmp").exists()
    csv = pd.read_csv(out / "verdicts.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns) == V.COLUMNS and len(csv) == 6 + 2 + 3 + 4 + 3 + 3 + 3
    assert set(csv["report"]) == {f"../{r}/{r}.html" for r in ("paradox", "quant", "calibration", "two_bit")}
    assert set(csv["table"]) == {f"reports/{r}/tables/{t}.csv" for r, t in TABLES if r != "adaptation"}
    md = (out / "verdicts.md").read_text()
    assert "| A       |       3 |               4 |                   1 |        8 |" in md  # holds, not, untestable
    assert "[quant](../quant/quant.html)" in md and "skipped): `adaptation`" in md
    assert "skipped (not built): adaptation" in capsys.readouterr().out
    # a second run replaces the folder
    (out / "stale.txt").write_text("x")
    runpy.run_path(str(ROOT / argv[0]), run_name="__main__")
    assert not (out / "stale.txt").exists()


def test_the_index_links_the_verdicts_table_once_it_is_built(tmp_path):
    from reasonlab.report import write_index

    reports = tmp_path / "reports"
    (reports / "verdicts").mkdir(parents=True)
    write_index(reports, reports / "index.html")
    assert "Every claim&#x27;s verdict" in (reports / "index.html").read_text()
    assert 'href="verdicts/verdicts.md"' not in (reports / "index.html").read_text()  # not built yet
    (reports / "verdicts" / "verdicts.md").write_text("| paper |\n")
    write_index(reports, reports / "index.html")
    page = (reports / "index.html").read_text()
    assert 'href="verdicts/verdicts.md"' in page and 'href="verdicts/verdicts.csv"' in page
