"""The quant pipeline: its params, its run grid, its report tables, and its stages end to end on the smoke profile."""

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, run_stage
from reasonlab.params import ParamsError, parse_params
from reasonlab.profiles import compose, write_params
from reasonlab.quant import tables as T
from reasonlab.quant.config import QuantParams
from reasonlab.quant.runs import qat_runs


pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny() -> dict:
    return compose("tiny", ROOT / "conf")


# ----------------------------------------------------------------------------- params
def test_profiles_compose_and_fit_the_reasoners():
    for profile in ("tiny", "smoke"):
        qc = parse_params(compose(profile, ROOT / "conf"), profile, cls=QuantParams).quant
        assert qc.qat.ablation.bits in qc.bits and len(qc.qat.seeds) >= 2
        assert set(qc.qat.objectives) == {"sft", "kd"} and qc.qat.init == "gptq"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda q: q["qat"]["train"].update(lr=-1), r"quant\.qat\.train\.lr"),
        (lambda q: q["qat"]["train"].update(stpes=3), r"quant\.qat\.train\.stpes"),
        (lambda q: q["qat"]["train"].update(warmup=600), r"quant\.qat\.train.*warmup=600 must be smaller"),
        (lambda q: q["qat"]["kd"].update(kind="kl"), r"quant\.qat\.kd\.kind"),
        (lambda q: q["qat"].update(seeds=[0, 0]), r"quant\.qat\.seeds"),
        (lambda q: q.update(bits=[5, 3]), r"quant\.bits"),
        (lambda q: q["qat"]["ablation"].update(bits=8), r"quant\.qat\.ablation\.bits"),
        (lambda q: q.update(methods=["rtn", "gptq"]), r"quant\.qat\.ablation\.inits.*awq"),
        (lambda q: q["qat"]["ablation"].update(reasoners=["qwen"]), r"quant\.qat\.ablation\.reasoners"),
        (lambda q: q["calib"].update(domain="wiki"), r"quant\.calib\.domain"),
        (lambda q: q["eval"].update(k=0), r"quant\.eval\.k"),
        (lambda q: q["traces"].update(max_per_problem=9), r"quant\.traces\.max_per_problem"),
        (lambda q: q["qat"].update(sources=["oracle"]), r"quant\.qat\.sources.*needs 'self'"),
        (lambda q: q["qat"].update(sources=["self", "teacher"]), r"quant\.qat\.sources"),
        (lambda q: q["qat"].update(oracle_dialect="klingon"), r"quant\.qat\.oracle_dialect"),
        (lambda q: q["qat"]["ablation"].update(baseline="fp"), r"quant\.qat\.ablation\.baseline='fp'"),
        (lambda q: q["qat"]["probe"].update(tiers=["easy"]), r"quant\.qat\.probe\.tiers"),
        (lambda q: q["two_bit"].update(bits=8), r"quant\.two_bit\.bits=8 must be one of quant\.bits"),
        (lambda q: q["two_bit"].update(objective="dpo"), r"quant\.two_bit\.objective"),
        (lambda q: q["qat"].update(objectives=["sft"]), r"quant\.two_bit\.objective='kd'"),
        (lambda q: q["two_bit"].update(source="oracle") or q["qat"].update(sources=["self"]),
         r"quant\.two_bit\.source='oracle'"),
    ],
)
def test_bad_values_name_their_key(edit, key):
    d = _tiny()
    edit(d["quant"])
    with pytest.raises(ParamsError, match=key):
        parse_params(d, cls=QuantParams)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: d["quant"].update(reasoners=["reasoner_s", "nope"]), r"quant\.reasoners.*'nope'"),
        (lambda d: d["quant"].update(group_size=48), r"quant\.group_size=48.*models\.reasoner_s\.hidden"),
        (lambda d: d["quant"]["qat"].update(sources=["self", "oracle"], oracle_dialect="qwen"),
         r"quant\.qat\.oracle_dialect='qwen' is models\.reasoner_s\.dialect"),
    ],
)
def test_params_checked_against_models_name_their_key(edit, key):
    d = _tiny()
    edit(d)
    with pytest.raises(ParamsError, match=key):
        parse_params(d, cls=QuantParams)  # checked whenever a quant stage reads params.yaml
    with pytest.raises(ParamsError, match=r"quant\.bits \[4, 3, 2\] does not list 5"):
        parse_params(_tiny(), cls=QuantParams).quant.check_stage("reasoner_s", 5)


def test_qat_grid_rq1_everywhere_rq2_at_the_ablation_bits():
    qc = parse_params(_tiny(), cls=QuantParams).quant
    ab = qc.qat.ablation
    for reasoner in qc.reasoners:
        for bits in qc.bits:
            runs = qat_runs(qc, reasoner, bits)
            rq1 = [r for r in runs if r.rq1]
            assert {(r.objective, r.init, r.seed, r.source) for r in rq1} == {
                (o, qc.qat.init, s, src) for o in qc.qat.objectives for s in qc.qat.seeds for src in qc.qat.sources}
            assert len({r.name for r in runs}) == len(runs)  # a run in both studies runs once
            assert all(r.source == "self" for r in runs if r.rq2)  # RQ2 trains on the reasoner's own traces
            rq2 = {(r.objective, r.init, r.seed) for r in runs if r.rq2}
            if bits == ab.bits and reasoner in qc.ablation_reasoners():
                assert rq2 == {(o, i, s) for o in qc.qat.objectives for i in ab.inits for s in qc.ablation_seeds()}
            else:
                assert not rq2


def test_sources_give_the_same_problems_in_the_named_style(smoke_world):
    """RQ1's data sources: the same problems, count and order as the reasoner's own traces; ``oracle`` is written
    in the oracle's dialect and step order, ``reference`` is the world's reference solution; both verify."""
    from reasonlab.quant.traces import source_traces, trace_items
    from reasonlab.world.tasks import open_task

    task = open_task(smoke_world)
    items, _ = trace_items(task, 12, 0)
    by_pid = {it.pid: it for it in items}
    own = [{"pid": it.pid, "prompt": it.prompt, "text": task.solution(it, "qwen"), "source": "self"}
           for it in items[:8] for _ in range(1 + (it.pid == items[0].pid))]  # a problem with two traces
    assert source_traces(task, own, by_pid, "self") == own
    for src, dialect in (("oracle", "oracle"), ("reference", "reference")):
        got = source_traces(task, own, by_pid, src, "oracle")
        assert [t["pid"] for t in got] == [t["pid"] for t in own] and all(t["source"] == src for t in got)
        for t in got:
            it = by_pid[t["pid"]]
            v = it.check(t["text"])
            assert v.correct and v.dialect == dialect, (src, t["text"])
            assert t["text"] != task.solution(it, "qwen")
        if src == "oracle":
            assert all(t["text"] == task.solution(by_pid[t["pid"]], "oracle") for t in got)
    with pytest.raises(ValueError, match="not in the held-out sample"):
        source_traces(task, [{**own[0], "pid": "nope"}], by_pid, "oracle")
    with pytest.raises(ValueError, match="unknown source 'teacher'"):
        source_traces(task, own, by_pid, "teacher")


def test_rq2_statistics_leave_the_start_out_and_check_the_room():
    from reasonlab.quant.rq2 import rq2_statistics

    steps = [0, 10, 20, 30]
    n = 50
    ctl = np.full(n, 0.6)
    # gptq starts higher (0.5) than rtn (0.2) and both rise by the same 0.1 per probe: a head start, no faster
    # learning; the area after step 0 still favours gptq, the rise does not
    def curve(start):
        return np.stack([np.tile(np.array([start + 0.1 * j for j in range(4)])[:, None], (1, n))] * 3)
    curves = {"kd": {"rtn": curve(0.2), "gptq": curve(0.5)}}
    finals = {"kd": {"rtn": np.full((3, n), 0.40), "gptq": np.full((3, n), 0.45)}}
    st = rq2_statistics(steps, curves, finals, {"kd": ctl}, target=0.9, baseline="rtn", n_boot=200)
    o = st["objectives"]["kd"]
    c = o["vs_rtn"]["gptq"]
    assert c["converges_faster"]["verdict"] == "holds"
    assert c["converges_faster"]["diff"]["mean"] == pytest.approx(0.3)  # mean of steps 10-30, not step 0
    assert c["rise_diff"]["mean"] == pytest.approx(0.0)
    assert c["ends_higher"]["diff"]["mean"] == pytest.approx(0.05) and c["ends_higher"]["verdict"] == "holds"
    assert o["target_acc"] == pytest.approx(0.54)
    assert o["inits"]["gptq"]["steps_to_target"] == [10, 10, 10] and o["inits"]["rtn"]["steps_to_target"] == [None] * 3
    assert o["inits"]["rtn"]["reached_share"] == 0.0
    # both inits already at the control: no room, not testable
    flat = rq2_statistics(steps, curves, finals, {"kd": np.full(n, 0.1)}, baseline="rtn", n_boot=200)
    assert flat["objectives"]["kd"]["vs_rtn"]["gptq"]["converges_faster"]["verdict"] == "not testable here"


def test_rq1_statistics_on_fixed_per_problem_results():
    from reasonlab.quant.rq1 import problem_shares, rq1_statistics

    rng = np.random.default_rng(0)
    fp = rng.uniform(0.4, 0.8, 60)
    init = fp - 0.3  # PTQ loses 30 points: something to recover
    runs = []
    for s in (0, 1, 2):
        runs += [{"objective": "sft", "source": "self", "seed": s, "per_problem": fp + 0.02},
                 {"objective": "kd", "source": "self", "seed": s, "per_problem": fp - 0.05},
                 {"objective": "sft", "source": "oracle", "seed": s, "per_problem": fp - 0.20},
                 {"objective": "kd", "source": "oracle", "seed": s, "per_problem": fp - 0.05}]
    controls = [{"objective": "sft", "source": src, "seed": s, "per_problem": fp + d}
                for s in (0, 1, 2) for src, d in (("self", 0.05), ("oracle", -0.10))]
    st = rq1_statistics(fp, init, runs, controls, n_boot=300)
    assert st["precondition"]["met"] and st["precondition"]["init_minus_fp"]["mean"] == pytest.approx(-30)
    own, orc = st["sources"]["self"], st["sources"]["oracle"]
    assert own["kd_beats_sft"]["verdict"] == "does not hold" and own["kd_beats_sft"]["opposite"]
    assert own["kd_beats_sft"]["diff"]["mean"] == pytest.approx(-7)
    assert orc["kd_beats_sft"]["verdict"] == "holds" and orc["kd_beats_sft"]["diff"]["mean"] == pytest.approx(15)
    assert own["sft_minus_control"]["mean"] == pytest.approx(-3) and own["control_minus_fp"]["mean"] == pytest.approx(5)
    assert orc["sft_minus_control"]["mean"] == pytest.approx(-10) and orc["kd_minus_fp"]["mean"] == pytest.approx(-5)
    assert own["kd_minus_fp"]["n_seeds"] == 3 and own["kd_minus_fp"]["n_problems"] == 60
    # PTQ already at FP: nothing to recover, the claim is not testable whatever the objectives do
    flat = rq1_statistics(fp, fp, runs, controls, n_boot=300)
    assert not flat["precondition"]["met"]
    assert {s["kd_beats_sft"]["verdict"] for s in flat["sources"].values()} == {"not testable here"}
    # per-problem shares from evaluation rows, in suite order; a problem without rows is an error
    suite = {"easy": [type("I", (), {"pid": "a"})(), type("I", (), {"pid": "b"})()]}
    rows = [{"tier": "easy", "pid": "a", "correct": c} for c in (1, 0, 1, 1)] + \
           [{"tier": "easy", "pid": "b", "correct": 0}]
    assert problem_shares(rows, suite) == [0.75, 0.0]
    with pytest.raises(ValueError, match="easy:b"):
        problem_shares(rows[:4], suite)


# ----------------------------------------------------------------------------- tables
def _tier(avg, length=30.0):
    return {"avg_at_k": avg, "greedy": avg, "mean_len_tokens": length}


def _model(avgs, **extra):
    m = {t: _tier(a) for t, a in zip(("easy", "medium", "hard"), avgs)}
    return {**m, "avg_at_k": float(np.mean(avgs)), "mean_len_tokens": 30.0, **extra}


@pytest.fixture()
def fixed_results(tmp_path):
    """Hand-made metrics: FP 0.6; W2 PTQ collapses; KD > SFT; GPTQ init best with SFT, not with KD; weak recovery."""
    ptq = {"reasoner": "r", "k": 4, "models": {
        "fp": _model([0.6, 0.6, 0.6], method="fp", bits=32, weights_bytes=4000, size_bytes=5000)}}
    for bits, accs in ((3, {"rtn": 0.40, "gptq": 0.50, "awq": 0.45}), (2, {"rtn": 0.10, "gptq": 0.20, "awq": 0.05})):
        for method, a in accs.items():
            ptq["models"][f"{method}-w{bits}"] = _model([a] * 3, method=method, bits=bits,
                                                       weights_bytes=250 * bits, size_bytes=1000 + 250 * bits)
    qat = {}
    for bits, base in ((3, 0.50), (2, 0.25)):
        runs = {}
        for seed, jitter in ((0, -0.02), (1, 0.02)):
            for obj, bonus in (("sft", 0.0), ("kd", 0.1)):
                runs[f"{obj}-gptq-s{seed}"] = _model([base + bonus + jitter] * 3, objective=obj, init="gptq", seed=seed,
                                                     rq1=True, rq2=bits == 3 and seed == 0, weights_bytes=250 * bits,
                                                     size_bytes=1000 + 250 * bits, probe_init=0.3, probe_final=0.5)
        if bits == 3:
            for init, sft, kd in (("fp", 0.30, 0.70), ("rtn", 0.35, 0.40)):
                for obj, a in (("sft", sft), ("kd", kd)):
                    runs[f"{obj}-{init}-s0"] = _model([a] * 3, objective=obj, init=init, seed=0, rq1=False, rq2=True,
                                                      weights_bytes=750, size_bytes=1750, probe_init=0.1,
                                                      probe_final=0.4)
        qat[f"r-w{bits}"] = {"reasoner": "r", "bits": bits, "k": 4, "runs": runs}
    for part, data in (("ptq", {"r": ptq}), ("qat", qat), ("traces", {"r": {"n_traces": 10}})):
        for name, d in data.items():
            (tmp_path / "metrics" / part).mkdir(parents=True, exist_ok=True)
            (tmp_path / "metrics" / part / f"{name}.json").write_text(json.dumps(d))
    # probe curves: GPTQ init starts higher and stays higher than fp and rtn (both objectives)
    for name, start in (("sft-gptq-s0", 0.5), ("kd-gptq-s0", 0.5), ("sft-fp-s0", 0.1), ("kd-fp-s0", 0.1),
                        ("sft-rtn-s0", 0.2), ("kd-rtn-s0", 0.2)):
        d = tmp_path / "plots" / "qat" / "r-w3" / name
        d.mkdir(parents=True)
        (d / "probe.tsv").write_text("step\tprobe_acc\n" + "".join(
            f"{s}\t{min(1.0, start + 0.001 * s):.4f}\n" for s in (0, 10, 20)))
    return tmp_path


def test_tables_on_fixed_results(fixed_results):
    df = T.results_frame(T.load_results(fixed_results / "metrics"))
    assert len(df) == 1 + 6 + 8 + 4  # FP, PTQ, QAT at W3 (4 RQ1 + 4 extra RQ2), QAT at W2

    t1 = T.rq1_table(df)
    w3 = t1[t1.bits == 3].set_index("method")
    assert list(w3.index) == list(T.METHODS)
    assert w3.loc["FP", "mean"] == pytest.approx(60.0)
    assert w3.loc["GPTQ", "easy"] == pytest.approx(50.0) and np.isnan(w3.loc["GPTQ", "easy_sd"])
    assert w3.loc["QAT-KD", "mean"] == pytest.approx(60.0) and w3.loc["QAT-KD", "n"] == 2  # RQ1 runs only
    assert w3.loc["QAT-SFT", "mean_sd"] == pytest.approx(100 * np.std([0.48, 0.52], ddof=1))
    assert list(t1.bits.drop_duplicates()) == [3, 2]
    shown = T.display_rq1(t1, 4)
    assert shown.loc[(shown.bits == "W3") & (shown.method == "QAT-SFT"), "Avg@4 mean"].item() == "50.0 ± 2.8"

    t2 = T.rq2_table(df).set_index(["init", "objective"])
    assert t2.loc[("fp", "kd"), "mean"] == pytest.approx(70.0)
    assert t2.loc[("gptq", "sft"), "mean"] == pytest.approx(48.0)  # seed 0 only
    assert t2.loc[("fp", "sft"), "ptq"] == pytest.approx(40.0)  # FP init starts from RTN's grid
    assert list(t2.index.get_level_values("init").drop_duplicates()) == ["fp", "rtn", "gptq"]

    rec = T.recovery_table(df).iloc[0]
    assert rec.bits == 2 and rec.best_ptq_method == "GPTQ" and rec.best_ptq == pytest.approx(20.0)
    assert rec.qat_kd == pytest.approx(35.0) and rec.recovered_kd == pytest.approx((35 - 20) / (60 - 20))

    sz = T.size_table(df).set_index("format")
    assert sz.loc["FP32", "compression"] == pytest.approx(1.0)
    assert sz.loc["W2 (packed)", "compression"] == pytest.approx(4000 / 500)

    curves = T.load_curves(fixed_results / "plots")
    assert len(curves) == 18 and set(curves.init) == {"fp", "rtn", "gptq"}
    conv = T.convergence_table(curves).set_index(["objective", "init"])
    assert conv.loc[("kd", "gptq"), "start"] == pytest.approx(50.0)
    assert conv.loc[("kd", "gptq"), "area_after_0"] == pytest.approx(51.5)  # steps 10 and 20, not the start
    assert conv.loc[("sft", "fp"), "steps_to_90"] == 10.0  # 0.11 >= 0.9 * 0.12

    fd = T.findings(df, curves).set_index("finding")["holds"]
    assert fd[fd.index.str.startswith("Low-bit")].item() == "yes"       # 20 < 0.5 * 60
    assert fd[fd.index.str.startswith("GPTQ is")].item() == "yes"       # 50 > 40, 20 > 10
    assert fd[fd.index.str.contains("KD beats SFT")].item() == "yes"
    assert fd[fd.index.str.contains("init beats")].item() == "partly"   # sft: gptq best; kd: fp init best
    assert fd[fd.index.str.contains("converges faster")].item() == "yes"
    assert fd[fd.index.str.startswith("QAT recovers")].item() == "no"   # 37.5% of the gap < 50%


def test_findings_react_to_the_numbers(fixed_results):
    """The verdicts are computed: flip KD and SFT and the RQ1 finding flips."""
    df = T.results_frame(T.load_results(fixed_results / "metrics"))
    swapped = df.copy()
    qat = swapped.method.str.startswith("QAT")
    swapped.loc[qat, "objective"] = swapped.loc[qat, "objective"].map({"kd": "sft", "sft": "kd"})
    fd = T.findings(swapped).set_index("finding")["holds"]
    assert fd[fd.index.str.contains("KD beats SFT")].item() == "no"
    assert fd[fd.index.str.contains("converges faster")].item() == "n/a"  # no curves given


def test_paired_findings_read_the_stage_verdicts():
    st = lambda v: {"diff": {"mean": 1.0, "ci95": [0.5, 1.5]}, "verdict": v}
    qat = {"r-w2": {"reasoner": "r", "bits": 2, "rq1_sources": {
        "precondition": {"init_minus_fp": {"mean": -5.0, "ci95": [-9.0, -1.0]}, "met": True},
        "sources": {"self": {"kd_beats_sft": st("does not hold")}, "oracle": {"kd_beats_sft": st("holds")}}}},
        "r-w4": {"reasoner": "r", "bits": 4, "rq1_sources": {
        "precondition": {"init_minus_fp": {"mean": 0.0, "ci95": [-2.0, 2.0]}, "met": False},
        "sources": {"self": {"kd_beats_sft": st("not testable here")}, "oracle": {"kd_beats_sft": st("not testable here")}}}}}
    fd = T.paired_findings({"qat": qat}).set_index("finding")
    oracle = [f for f in fd.index if "source oracle" in f][0]
    own = [f for f in fd.index if "source self" in f][0]
    assert fd.loc[oracle, "holds"] == "yes" and fd.loc[own, "holds"] == "no"
    assert "GPTQ init - FP" in fd.loc[oracle, "evidence"]  # the untestable block says why
    qat["r-w2"]["rq1_sources"]["sources"]["oracle"]["kd_beats_sft"] = st("not testable here")
    assert T.paired_findings({"qat": qat}).set_index("finding").loc[oracle, "holds"] == "not testable here"
    assert T.paired_findings({"qat": {}}).empty


def test_paper_comparison_puts_shares_and_signs_beside_the_papers():
    from reasonlab.quant.paper import PAPER_B, paper_comparison
    ci = lambda m: {"mean": m, "ci95": [m - 1.0, m + 1.0]}
    src = lambda kd_fp, kd_sft, v: {"kd_minus_fp": ci(kd_fp), "kd_beats_sft": {"diff": ci(kd_sft), "verdict": v}}
    fp = {"avg_at_k": 0.10}
    qat = {"r-w2": {"reasoner": "r", "bits": 2, "fp": fp, "rq1_sources": {
               "precondition": {"init_minus_fp": ci(-4.0), "met": True},
               "sources": {"oracle": src(-1.0, 3.0, "holds"), "self": src(-4.0, 0.2, "does not hold")}},
               "rq2": {"baseline": "rtn", "objectives": {"kd": {"vs_rtn": {"gptq": {
                   "ends_higher": {"verdict": "holds", "diff": {"mean": 0.02, "ci95": [0.01, 0.03]}}}}}}}},
           "r-w3": {"reasoner": "r", "bits": 3, "fp": fp, "rq1_sources": {
               "precondition": {"init_minus_fp": ci(0.0), "met": False},
               "sources": {"oracle": src(0.0, 1.0, "not testable here")}}}}
    t = paper_comparison({"qat": qat}).set_index(["quantity", "bits"])
    # the paper's side is computed from its figures: 26.6 / 74.8, (56.6 - 26.6) / (74.8 - 26.6), 56.45 - 55.27
    assert t.loc[("GPTQ keeps of FP accuracy (%)", "W3"), "paper"] == pytest.approx(35.56, abs=0.01)
    assert t.loc[("QAT wins back of GPTQ's loss (%)", "W3"), "paper"] == pytest.approx(62.24, abs=0.01)
    assert t.loc[("KD - SFT (points)", "W3"), "paper"] == pytest.approx(1.18)
    assert (t.loc[t.paper.notna(), "paper_status"] == "unverified (third-party notes, docs/design.md)").all()
    # ours: FP 10 points, GPTQ 6 -> keeps 60%; KD wins back 3 of the 4 lost points (oracle), none (self)
    assert "r W2: 60%" in t.loc[("GPTQ keeps of FP accuracy (%)", "W2"), "ours"]
    back = t.loc[("QAT wins back of GPTQ's loss (%)", "W2"), "ours"]
    assert "r W2 oracle: 75%" in back and "r W2 self: 0%" in back
    assert "not testable here" in t.loc[("QAT wins back of GPTQ's loss (%)", "W3"), "ours"]
    assert "+3.0 [+2.0, +4.0] holds" in t.loc[("KD - SFT (points)", "W2"), "ours"]
    assert "+2.0 [+1.0, +3.0] holds" in t.loc[("PTQ (GPTQ) init beats RTN init after the same budget", "–"), "ours"]
    # a changed number moves the row: ours is read from the results, never fixed
    qat["r-w2"]["rq1_sources"]["sources"]["oracle"]["kd_minus_fp"] = ci(-2.0)
    assert "r W2 oracle: 50%" in paper_comparison({"qat": qat}).set_index(["quantity", "bits"]).loc[
        ("QAT wins back of GPTQ's loss (%)", "W2"), "ours"]
    assert PAPER_B["w2_r1"]["gptq"] == 3.67


def test_findings_check_the_capability_precondition(fixed_results):
    """A reasoner whose FP accuracy is below MIN_FP is left out of every verdict; with none above it, every
    finding is 'not testable here' (the first world-v2 run: FP 4.4 points). The same numbers scaled up pass."""
    df = T.results_frame(T.load_results(fixed_results / "metrics"))
    curves = T.load_curves(fixed_results / "plots")
    assert T.fp_levels(df) == {"r": pytest.approx(60.0)}
    assert set(T.findings(df, curves)["holds"]) != {"not testable here"}  # FP 60 meets the precondition
    floor = df.assign(avg=df.avg * 0.1)  # FP 6 points: the same ranking, near the floor
    fd = T.findings(floor, curves)
    assert set(fd["holds"]) == {"not testable here"}
    assert fd["evidence"].str.contains("FP 6.0").all()
    assert (T.findings(floor, curves, min_fp=5.0)["holds"] == T.findings(df, curves)["holds"]).all()
    # two reasoners, one below: its numbers are left out of the verdicts, and the evidence says so
    other = floor.assign(reasoner="weak")
    both = T.findings(pd.concat([df, other], ignore_index=True), curves)
    assert (both["holds"] == T.findings(df, curves)["holds"]).all()
    assert both["evidence"].str.contains("weak \\(FP 6.0\\)").all()


# ----------------------------------------------------------------------------- stages end to end
STAGES = ROOT / "stages"


@pytest.fixture(scope="module")
def smoke_quant(tmp_path_factory, smoke_params, smoke_world):
    """The quant stages on the smoke profile, in a scratch directory laid out like the repository."""
    from reasonlab.models.pretrain import pretrain

    root = tmp_path_factory.mktemp("quant_smoke")
    old = os.getcwd()
    os.chdir(root)
    try:
        params = compose("smoke", ROOT / "conf")
        write_params(params, root / "params.yaml")
        shutil.copytree(smoke_world, root / "data" / "world")
        shutil.copytree(ROOT / "stages", root / "stages")
        qc = smoke_params.quant
        for r in qc.reasoners:
            pretrain(smoke_params, r, "data/world", f"models/{r}", ckpt_root=".ckpt")
            run_stage("quant_traces", params, item=r)
            run_stage("quant_ptq", params, item=r)
            for b in qc.bits:
                run_stage("quant_qat", params, reasoner=r, bits=b)
            run_stage("quant_calib", params, item=r)
            run_stage("quant_w2", params, item=r)  # at quant.two_bit.bits
        yield root, qc, params
    finally:
        os.chdir(old)


def test_stages_write_packed_checkpoints_metrics_and_curves(smoke_quant):
    from transformers import AutoModelForCausalLM

    root, qc, _ = smoke_quant
    r = qc.reasoners[0]
    traces = json.loads((root / f"metrics/quant/traces/{r}.json").read_text())
    assert traces["n_traces"] > 0 and (root / f"data/quant/traces/{r}.jsonl").stat().st_size > 0

    ptq = json.loads((root / f"metrics/quant/ptq/{r}.json").read_text())
    assert set(ptq["models"]) == {"fp"} | {f"{m}-w{b}" for m in qc.methods for b in qc.bits}
    for name, m in ptq["models"].items():
        assert 0.0 <= m["avg_at_k"] <= 1.0 and set(qc.eval.tiers) <= set(m)
        if name != "fp":
            assert m["weights_bytes"] < ptq["models"]["fp"]["weights_bytes"]
            assert m["reload_max_logit_diff"] <= 1e-4

    low = min(qc.bits)
    for b in qc.bits:
        q = json.loads((root / f"metrics/quant/qat/{r}-w{b}.json").read_text())
        runs = qat_runs(qc, r, b)
        assert set(q["runs"]) == {run.name for run in runs}
        for run in runs:
            m = q["runs"][run.name]
            assert m["export_max_logit_diff"] <= 1e-4 and m["weights_bytes"] < ptq["models"]["fp"]["weights_bytes"]
            assert m["source"] == run.source
            probe = root / f"plots/quant/qat/{r}-w{b}/{run.name}/probe.tsv"
            assert probe.exists() == run.rq2  # the curve is RQ2's measurement
            if run.rq2:
                curve = pd.read_csv(probe, sep="\t")
                assert curve.step.tolist() == sorted({0, *range(qc.qat.eval_every, qc.qat.train.steps + 1,
                                                                qc.qat.eval_every), qc.qat.train.steps})
            assert (root / f"plots/quant/qat/{r}-w{b}/{run.name}/loss.tsv").exists()
        # per-problem results of every model, from which the stage's RQ1 statistics are recomputed
        pp = json.loads((root / f"data/quant/qat/{r}-w{b}.json").read_text())
        n = qc.eval.limit * len(qc.eval.tiers)
        assert len(pp["problems"]) == len(pp["fp"]) == len(pp["init"]) == n
        assert set(pp["runs"]) == set(q["runs"]) and set(pp["controls"]) == set(q["controls"])
        assert set(q["controls"]) == {f"control-sft-{src}-s{s}" for src in qc.qat.sources for s in qc.qat.seeds}
        assert abs(np.mean(pp["fp"]) - q["fp"]["avg_at_k"]) < 1e-9  # tiers have equal sizes here
        assert set(q["rq1_sources"]["sources"]) == set(qc.qat.sources)
        # RQ2 at the ablation bits: probed on the validation split only, each init against the baseline
        if b == qc.qat.ablation.bits:
            test_pids = {p.split(":", 1)[1] for p in pp["problems"]}
            assert q["rq2"]["probe_split"] == "validation"
            assert all(p.startswith("validation:") for p in pp["probe"]["problems"])
            assert not {p.split(":", 1)[1] for p in pp["probe"]["problems"]} & test_pids
            assert set(pp["probe"]["runs"]) == {run.name for run in runs if run.rq2}
            base = qc.qat.ablation.baseline
            for obj in qc.qat.objectives:
                o = q["rq2"]["objectives"][obj]
                assert set(o[f"vs_{base}"]) == set(qc.qat.ablation.inits) - {base}
                for init, c in o[f"vs_{base}"].items():
                    assert c["converges_faster"]["verdict"] in ("holds", "does not hold", "not testable here")
                    area = lambda i: np.mean([np.mean(np.array(pp["probe"]["runs"][f"{obj}-{i}-s{s}"])[1:])
                                              for s in qc.ablation_seeds()])
                    if "diff" in c["converges_faster"]:
                        assert c["converges_faster"]["diff"]["mean"] == pytest.approx(area(init) - area(base))
        else:
            assert q["rq2"] is None
        for src, st in q["rq1_sources"]["sources"].items():
            kd = [pp["runs"][f"kd-gptq{'' if src == 'self' else '-' + src}-s{s}"] for s in qc.qat.seeds]
            sft = [pp["runs"][f"sft-gptq{'' if src == 'self' else '-' + src}-s{s}"] for s in qc.qat.seeds]
            assert st["kd_beats_sft"]["diff"]["mean"] == pytest.approx(100 * (np.mean(kd) - np.mean(sft)))
            assert st["kd_beats_sft"]["verdict"] in ("holds", "does not hold", "not testable here")
            ctl = [pp["controls"][f"control-sft-{src}-s{s}"] for s in qc.qat.seeds]
            assert st["sft_minus_control"]["mean"] == pytest.approx(100 * (np.mean(sft) - np.mean(ctl)))
    # an FP control trains the same data, objective, budget and seed as its QAT-SFT runs (their run configs)
    specs = {p.parent.name: json.loads(p.read_text()) for p in (root / ".ckpt").glob("quant-*/spec.json")}
    for src in qc.qat.sources:
        for seed in qc.qat.seeds:
            ctl = [v for k, v in specs.items() if k.startswith(f"quant-control-{r}-control-sft-{src}-s{seed}-")]
            qat = [v for k, v in specs.items() if k.startswith(f"quant-qat-{r}-w{low}-sft-gptq"
                                                                 f"{'' if src == 'self' else '-' + src}-s{seed}-")]
            assert len(ctl) == 1 and len(qat) == 1
            for key in ("model", "traces", "train", "data", "seed", "objective"):
                assert ctl[0][key] == qat[0][key], key
            assert "scheme" not in ctl[0] and "ptq" not in ctl[0]  # no fake quantization
    # a stock from_pretrained loads the exported QAT checkpoint (packed low-bit weights)
    ckpt = root / f"models/quant/{r}/qat-w{low}/kd-gptq-s0"
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["num_bits"] == low
    model = AutoModelForCausalLM.from_pretrained(str(ckpt))
    assert model(input_ids=torch.tensor([[2, 5, 6]])).logits.isfinite().all()
    # checkpoints stay out of git
    assert (root / ".ckpt" / ".gitignore").read_text().strip() == "*"


def test_rerunning_a_qat_stage_reuses_finished_runs(smoke_quant, capsys):
    root, qc, params = smoke_quant
    r, b = qc.reasoners[0], min(qc.bits)
    metrics = root / f"metrics/quant/qat/{r}-w{b}.json"
    before = json.loads(metrics.read_text())
    capsys.readouterr()
    run_stage("quant_qat", params, reasoner=r, bits=b)
    out = capsys.readouterr().out
    assert out.count("finished earlier") == len(before["runs"]) + len(before["controls"])
    after = json.loads(metrics.read_text())
    for name, m in before["runs"].items():
        assert after["runs"][name]["avg_at_k"] == m["avg_at_k"]
        assert after["runs"][name]["final_loss"] == m["final_loss"]


def test_report_notebook_renders(smoke_quant):
    from reasonlab.report import run_notebook

    root, _, _ = smoke_quant
    page = run_notebook("quant", root / "reports" / "quant",
                        {"metrics_dir": str(root / "metrics/quant"), "plots_dir": str(root / "plots/quant")},
                        notebooks=ROOT / "notebooks")
    html = page.read_text()
    for heading in ("RQ1: QAT objective", "RQ2: QAT initialisation", "Low-bit recovery",
                    "figures beside ours", "On-disk size", "Which of the paper"):
        assert heading in html
    assert "unverified" in (root / "reports/quant/tables/paper_vs_ours.csv").read_text()
    figs = {p.stem for p in (root / "reports/quant/figures").glob("*.png")}
    assert {"rq1_objective", "rq2_curves", "low_bit_recovery"} <= figs
    assert (root / "reports/quant/tables/findings.csv").exists()


def test_calibration_stage_writes_sets_per_problem_results_curves_and_verdicts(smoke_quant):
    """quant_calib on the smoke profile: one calibration set per domain, the QAT inits packed with the set's hash
    in their metadata, per-problem results that give back the metrics, a curve per run, a verdict per claim."""
    import pandas as pd

    from reasonlab.quant.packed import METADATA_FILE

    root, qc, _ = smoke_quant
    r, ca = qc.reasoners[0], qc.calib_align
    m = json.loads((root / f"metrics/quant/calib/{r}.json").read_text())
    sets = json.loads((root / f"data/quant/calib/{r}/calib_sets.json").read_text())
    assert list(sets) == list(ca.domains) and {len(s["texts"]) for s in sets.values()} == {m["n_calib"]}
    for dom, s in sets.items():
        assert m["calib"][dom]["digest"] == s["digest"]
        meta = json.loads((root / f"data/quant/calib/{r}/init/{ca.qat_init}-w{ca.qat_bits}-{dom}/{METADATA_FILE}")
                          .read_text())
        assert meta["calib_digest"] == s["digest"] and meta["calib_domain"] == dom  # the init records its set
    assert set(m["ptq"]) == {f"{x}-w{b}" for b in ca.bits for x in ca.methods}
    pp = pd.read_parquet(root / f"data/quant/calib/{r}/per_problem.parquet")
    fp = pp[(pp.kind == "test") & (pp.model == "fp")]
    assert fp.acc.mean() == pytest.approx(m["fp"]["avg_at_k"])  # equal tiers: the tier mean is the problem mean
    assert pp[(pp.kind == "probe")].problem.str.startswith("validation:").all()
    steps = m["qat"]["probe_steps"]
    assert steps[0] == 0 and steps[-1] == qc.qat.train.steps
    for dom in ca.domains:
        for seed in ca.seeds:
            probe = pd.read_csv(root / f"plots/quant/calib/{r}/{dom}-s{seed}/probe.tsv", sep="\t")
            assert list(probe.step) == steps
    verdicts = {c[k]["verdict"] for c in m["qat"]["aligned_vs"].values() for k in ("converges_faster", "ends_higher")}
    verdicts |= {c["verdict"] for p in m["ptq"].values() for c in p["aligned_vs"].values()}
    assert verdicts <= {"holds", "does not hold", "not testable here"}


def test_two_bit_statistics_on_fixed_inputs():
    from reasonlab.quant import two_bit as TB

    rng = np.random.default_rng(0)
    fp = rng.uniform(0.2, 1.0, 64)
    ptq = 0.4 * fp
    k = TB.kept_share(fp, ptq)
    assert k["defined"] and k["mean"] == pytest.approx(0.4) and k["ci95"] == pytest.approx([0.4, 0.4])
    assert k["model_minus_fp"]["mean"] == pytest.approx(-60 * fp.mean())  # points
    # QAT halfway between PTQ and FP in every seed: half the loss won back, an interval around it
    qat = np.stack([ptq + 0.5 * (fp - ptq) + rng.normal(0, 0.05, 64) for _ in range(3)])
    r = TB.recovered_fraction(ptq, qat, fp)
    assert r["defined"] and r["mean"] == pytest.approx(0.5, abs=0.05) and r["ci95"][0] < r["mean"] < r["ci95"][1]
    assert r["gap"]["mean"] == pytest.approx(60 * fp.mean()) and r["gain"]["mean"] > 0
    # PTQ already at FP: nothing to recover, the fraction is undefined and says why
    u = TB.recovered_fraction(fp, qat, fp)
    assert not u["defined"] and "nothing to recover" in u["why"] and "mean" not in u
    # against FP controls (one per seed) the reference is per seed
    ctl = np.stack([fp] * 3)
    assert TB.recovered_fraction(ptq, qat, ctl)["mean"] == pytest.approx(r["mean"])
    # the smaller model keeping less shows as a negative difference
    d = TB.kept_share_diff(fp, 0.3 * fp, fp, 0.8 * fp)
    assert d["mean"] == pytest.approx(-0.5) and d["ci95"][1] < 0
    stats = {"s": {"ptq_kept": k, "recovered": r}, "m": {"ptq_kept": TB.kept_share(fp, 0.8 * fp), "recovered": u}}
    scores = {"s": {"fp": fp, "ptq": ptq, "qat": qat}, "m": {"fp": fp, "ptq": 0.8 * fp, "qat": qat}}
    cl = TB.two_bit_claims(stats, scores, ["s", "m"], n_boot=200)
    assert cl["ptq_breaks"]["s"]["verdict"] == "holds" and cl["ptq_breaks"]["m"]["opposite"]
    assert cl["qat_recovers"]["m"]["verdict"] == "not testable here"
    assert cl["smaller_suffers_more"]["s_vs_m"]["verdict"] == "holds"
    assert TB.two_bit_claims(stats, scores, ["s"])["smaller_suffers_more"]["-"]["verdict"] == "not testable here"
    # three sizes: both adjacent pairs and the smallest against the largest
    stats["l"], scores["l"] = stats["m"], {"fp": fp, "ptq": 0.9 * fp, "qat": qat}
    three = TB.two_bit_claims(stats, scores, ["s", "m", "l"], n_boot=200)["smaller_suffers_more"]
    assert list(three) == ["s_vs_m", "m_vs_l", "s_vs_l"]
    assert three["s_vs_l"]["ptq_kept_diff"]["mean"] == pytest.approx(0.4 - 0.9)
    with pytest.raises(ValueError, match="different problems"):
        TB.ratio_of_means(fp, fp[:10])


def test_quant_w2_stage_recovery_sizes_and_stock_parity(smoke_quant):
    """quant_w2 on the smoke profile: the recipe's runs and controls are read back, the packed checkpoint is smaller
    than FP32 by about the bit width's ratio on its quantized layers, stock transformers in a fresh process decodes
    the same greedy tokens as the in-process dequantized copy."""
    from reasonlab.quant.packed import weights_bytes

    root, qc, _ = smoke_quant
    r = qc.reasoners[0]
    m = json.loads((root / f"metrics/quant/two_bit/{r}.json").read_text())
    d = json.loads((root / f"data/quant/two_bit/{r}.json").read_text())
    pp = json.loads((root / f"data/quant/qat/{r}-w2.json").read_text())
    assert d["fp"] == pp["fp"] and d["ptq"] == pp["init"] and d["problems"] == pp["problems"]
    assert m["objective"] == "kd" and m["source"] == "self" and m["seeds"] == list(qc.qat.seeds)
    assert d["qat"]["kd"]["scores"] == [pp["runs"][f"kd-{qc.qat.init}-s{s}"] for s in qc.qat.seeds]
    models = [row["model"] for row in m["table"]]
    assert models[0] == "FP" and any(x.startswith("QAT-KD") for x in models) and "GPTQ W2" in models
    for key in ("ptq_kept", "recovered"):
        assert m[key].get("defined") in (True, False) and ("why" in m[key]) != bool(m[key].get("defined"))
    c = m["checkpoint"]
    assert c["parity"]["all_identical"] and c["parity"]["identical"] == c["parity"]["prompts"] > 0
    assert d["parity"]["in_process"] == d["parity"]["stock_fresh_process"]
    assert all(len(t) == c["parity"]["tokens"] for t in d["parity"]["stock_fresh_process"])
    s = c["sizes"]
    bpp = s["bytes_per_quantized_param"]
    assert 2 / 8 <= bpp <= 2 / 8 + 8 / qc.group_size + 1e-9  # 2-bit codes plus one scale and zero point per group
    assert s["total"] + s["header"] == c["packed_weights_bytes"]  # every byte of the files is accounted for
    assert c["packed_weights_bytes"] == weights_bytes(root / c["path"]) < c["fp32_weights_bytes"]
    assert s["with_embeddings_quantized"] < c["packed_weights_bytes"] and s["embedding_params"] > 0


def test_quant_w2_reads_its_bit_width_from_params(smoke_quant, tmp_path):
    """quant.two_bit.bits chooses the width: at W3 the stage reads the W3 QAT results (its table, its packed
    checkpoint's bytes), refuses another width's inputs with a message naming the param, and the report renders
    without the paper's W2 figures."""
    from reasonlab.io import write_json
    from reasonlab.quant.drivers.two_bit import run_two_bit
    from reasonlab.report import run_notebook

    root, qc, params = smoke_quant
    assert qc.two_bit.bits == 2 and 3 in qc.bits
    r = qc.reasoners[0]
    d = copy.deepcopy(params)
    d["quant"]["two_bit"]["bits"] = 3
    P3 = parse_params(d, cls=QuantParams)
    ins = lambda b: dict(qat_metrics=root / f"metrics/quant/qat/{r}-w{b}.json",
                         per_problem=root / f"data/quant/qat/{r}-w{b}.json",
                         ptq_metrics=root / f"metrics/quant/ptq/{r}.json", qat_dir=root / f"models/quant/{r}/qat-w{b}")
    m = run_two_bit(P3, r, root / f"models/{r}", root / "data/world", out_data=tmp_path / "d" / f"{r}.json", **ins(3))
    assert m["bits"] == 3 and m["group_size"] == qc.group_size
    assert "GPTQ W3" in [row["model"] for row in m["table"]] and not any("W2" in row["model"] for row in m["table"])
    bpp = m["checkpoint"]["sizes"]["bytes_per_quantized_param"]
    assert 3 / 8 <= bpp <= 4 / 8 + 8 / qc.group_size + 1e-9  # 3-bit codes (packed in 32-bit words) plus scales
    assert m["checkpoint"]["parity"]["all_identical"]
    with pytest.raises(ValueError, match=r"at 2 bits, but quant\.two_bit\.bits=3"):
        run_two_bit(P3, r, root / f"models/{r}", root / "data/world", out_data=tmp_path / "x.json", **ins(2))
    write_json(tmp_path / "m" / f"{r}.json", m)
    page = run_notebook("two_bit", tmp_path / "report", {"metrics_dir": str(tmp_path / "m"), "data_dir": str(tmp_path / "d"),
                                                          "reasoners": [r]}, notebooks=ROOT / "notebooks")
    html = page.read_text()
    assert "Bit width: W3" in html and "Not compared: this report is at W3" in html
    assert not (tmp_path / "report/tables/paper_vs_ours.csv").exists()


def test_two_bit_report_renders(smoke_quant):
    from reasonlab.report import run_notebook

    root, qc, _ = smoke_quant
    page = run_notebook("two_bit", root / "reports" / "two_bit",
                        {"metrics_dir": str(root / "metrics/quant/two_bit"),
                         "data_dir": str(root / "data/quant/two_bit"), "reasoners": list(qc.reasoners)}, notebooks=ROOT / "notebooks")
    html = page.read_text()
    for heading in ("Bit width: W2", "The table", "What PTQ keeps", "Verdicts", "beside ours", "low-bit checkpoint"):
        assert heading in html
    assert (root / "reports/two_bit/figures/kept_share.png").exists()
    v = pd.read_csv(root / "reports/two_bit/tables/verdicts.csv")
    assert set(v.verdict) <= {"holds", "does not hold", "not testable here"}


def test_calibration_report_renders(smoke_quant):
    from reasonlab.report import run_notebook

    root, _, _ = smoke_quant
    page = run_notebook("calibration", root / "reports" / "calibration",
                        {"metrics_dir": str(root / "metrics/quant/calib"),
                         "plots_dir": str(root / "plots/quant/calib")}, notebooks=ROOT / "notebooks")
    html = page.read_text()
    for heading in ("The calibration sets", "PTQ alone", "QAT from each domain"):
        assert heading in html
    assert (root / "reports/calibration/figures/qat_curves.png").exists()
    assert (root / "reports/calibration/tables/qat_claims.csv").exists()


def test_dvc_yaml_quant_stages_expand(tmp_path):
    """The quant stages of dvc.yaml resolve with the smoke params (foreach / matrix)."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    quant_stages = {k: v for k, v in dvc["stages"].items()
                    if k.startswith("quant_") or k in ("report_quant", "report_calibration", "report_two_bit")}
    assert set(quant_stages) == {"quant_traces", "quant_ptq", "quant_qat", "quant_calib", "quant_w2", "report_quant",
                                 "report_calibration", "report_two_bit"}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    write_params(compose("smoke", ROOT / "conf"), tmp_path / "params.yaml")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    r = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = set(r.stdout.split())
    qc = parse_params(compose("smoke", ROOT / "conf"), cls=QuantParams).quant
    expected = {f"quant_traces@{x}" for x in qc.reasoners} | {f"quant_ptq@{x}" for x in qc.reasoners}
    expected |= {f"quant_qat@{x}-{b}" for x in qc.reasoners for b in qc.bits} | {"report_quant"}
    expected |= {f"quant_calib@{x}" for x in qc.reasoners} | {"report_calibration"}
    expected |= {f"quant_w2@{x}" for x in qc.reasoners} | {"report_two_bit"}
    assert expected <= names
    # every params key a quant stage declares exists in params.yaml
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    for stage in quant_stages.values():
        for key in (stage.get("do", stage)).get("params", []):
            node = params
            for part in key.split("."):
                assert part in node, key
                node = node[part]
