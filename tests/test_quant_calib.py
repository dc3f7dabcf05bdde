"""Calibration-domain alignment (RQ4): the calibration sets, the curve summaries and verdicts, the params, the
report's tables on fixed metrics, and the stage on the smoke profile."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from reasonlab.io import params_hash
from reasonlab.params import ParamsError, parse_params
from reasonlab.profiles import compose
from reasonlab.quant import calib_tables as CT
from reasonlab.quant.calib_align import area_after_start, calibration_sets, claim, steps_to_target
from reasonlab.quant.config import QuantParams
from reasonlab.quant.traces import trace_items
from reasonlab.world.tasks import open_task

pytestmark = pytest.mark.usefixtures("one_thread")


def _ca(**edit):
    d = compose("tiny", ROOT / "conf")
    d["quant"]["calib_align"].update(edit)
    return parse_params(d, cls=QuantParams).quant.calib_align


@pytest.fixture(scope="module")
def task_and_traces(smoke_world):
    """The smoke world and fake "self-generated" traces: the qwen rendering of 30 held-out problems, two per
    problem for the first ten (a reasoner keeps up to two)."""
    task = open_task(smoke_world)
    items, sols = trace_items(task, 40, 0, "qwen")
    traces = []
    for i, (it, s) in enumerate(zip(items[:30], sols)):
        traces += [{"pid": it.pid, "prompt": it.prompt, "text": s}] * (2 if i < 10 else 1)
    return task, items, traces


# ----------------------------------------------------------------------------- the calibration sets
def test_each_set_comes_from_its_domain(task_and_traces):
    task, items, traces = task_and_traces
    ca = _ca(n_samples=12)
    sets = calibration_sets(ca, task, traces, {it.pid: it for it in items}, "<eos>")
    assert list(sets) == ["traces", "other_dialect", "general"]
    assert {len(s.texts) for s in sets.values()} == {12}
    by_pid = {it.pid: it for it in items}
    own = sets["traces"]
    assert len(set(own.sources)) == 12  # one text per problem, duplicates of a problem skipped
    other = sets["other_dialect"]
    assert other.sources == own.sources  # the same problems, another style
    for pid, a, b in zip(own.sources, own.texts, other.texts):
        it = by_pid[pid]
        assert a.startswith(it.prompt) and b.startswith(it.prompt) and a.endswith("<eos>") and a != b
        assert it.check(a[len(it.prompt):-len("<eos>")]).dialect == "qwen"
        verdict = it.check(b[len(it.prompt):-len("<eos>")])
        assert verdict.dialect == "oracle" and verdict.correct
    # held-out problems, never a test tier (compared by text, whatever the pids)
    test_prompts = {it.prompt for t in ("easy", "medium", "hard") for it in task.tier_items(t)}
    assert not any(t.startswith(p) for t in own.texts + other.texts for p in test_prompts)
    gen = sets["general"]
    assert gen.sources == [f"general:{i}" for i in range(12)] and gen.texts == task.general_texts()[:12]
    digests = {s.digest for s in sets.values()}
    assert len(digests) == 3 and sets["general"].digest == params_hash(gen.texts)


def test_the_smallest_domain_decides_the_size(task_and_traces):
    task, items, traces = task_and_traces
    sets = calibration_sets(_ca(n_samples=256), task, traces, {it.pid: it for it in items}, "<eos>")
    assert {len(s.texts) for s in sets.values()} == {30}  # 30 traced problems < 256


def test_traces_from_other_problems_are_refused(task_and_traces):
    task, items, traces = task_and_traces
    with pytest.raises(ValueError, match="quant.calib_align.*held-out sample of quant.traces"):
        calibration_sets(_ca(n_samples=5), task, traces, {it.pid: it for it in items[5:]}, "<eos>")


# ----------------------------------------------------------------------------- curve summaries and verdicts
def test_steps_to_target_and_area_on_fixed_curves():
    steps = [0, 10, 20, 30]
    assert steps_to_target(steps, [0.1, 0.3, 0.5, 0.6], 0.45) == 20
    assert steps_to_target(steps, [0.5, 0.3, 0.5, 0.6], 0.45) == 0  # the init is already there
    assert steps_to_target(steps, [0.1, 0.2, 0.3, 0.4], 0.45) is None
    vals = np.array([[0.9, 0.0], [0.2, 0.4], [0.4, 0.4], [0.6, 0.4]])  # [steps, problems]
    np.testing.assert_allclose(area_after_start(steps, vals), [0.4, 0.4])  # step 0 left out
    with pytest.raises(ValueError, match="no probed step after 0"):
        area_after_start([0], vals[:1])


def test_claim_verdicts():
    up = {"mean": 0.05, "ci95": [0.01, 0.09], "se": 0.02}
    flat = {"mean": 0.01, "ci95": [-0.02, 0.04], "se": 0.015}
    down = {"mean": -0.05, "ci95": [-0.09, -0.01], "se": 0.02}
    assert claim(up, True)["verdict"] == "holds"
    assert claim(flat, True)["verdict"] == "does not hold" and not claim(flat, True)["opposite"]
    assert claim(down, True)["opposite"]
    c = claim(up, False, "PTQ loses nothing")
    assert c["verdict"] == "not testable here" and c["why"] == "PTQ loses nothing" and c["diff"]["mean"] == 0.05


# ----------------------------------------------------------------------------- params
@pytest.mark.parametrize("edit, key", [
    (dict(domains=["general", "other_dialect"]), r"quant\.calib_align\.domains.*needs 'traces'"),
    (dict(domains=["traces"]), r"quant\.calib_align\.domains"),
    (dict(domains=["traces", "wiki"]), r"quant\.calib_align\.domains"),
    (dict(qat_bits=4), r"quant\.calib_align\.qat_bits=4"),
    (dict(methods=["gptq"], qat_init="awq"), r"quant\.calib_align\.qat_init='awq'"),
    (dict(methods=["rtn", "gptq"]), r"quant\.calib_align\.methods"),
    (dict(other_dialect="qwen"), r"quant\.calib_align\.other_dialect='qwen' is models\.reasoner_s\.dialect"),
    (dict(bits=[8, 2]), r"quant\.calib_align\.bits: \[8\] must be in quant\.bits"),
    (dict(target=1.5), r"quant\.calib_align\.target"),
])
def test_bad_values_name_their_key(edit, key):
    d = compose("tiny", ROOT / "conf")
    d["quant"]["calib_align"].update(edit)
    with pytest.raises(ParamsError, match=key):
        parse_params(d, cls=QuantParams)


# ----------------------------------------------------------------------------- report tables on fixed metrics
def _metrics(ptq_gap: float, diff_lo: float) -> dict:
    d = {"mean": 0.05, "ci95": [diff_lo, 0.09], "se": 0.02, "n_problems": 96, "n_seeds": 3}
    tier = {"avg_at_k": 0.4, "avg_at_k_ci95": [0.3, 0.5]}
    gap = {"mean": ptq_gap, "ci95": [ptq_gap - 0.04, ptq_gap + 0.04], "se": 0.02, "met": ptq_gap > 0.04}
    verdict = claim(d, gap["met"], "no gap")
    return {
        "k": 4, "n_calib": 150, "target_acc": 0.36, "target": 0.9,
        "calib": {dom: {"n": 150, "mean_tokens": 60.0, "digest": dom[:4], "sources": ["a", "b"]}
                  for dom in ("traces", "general")},
        "fp": {"easy": tier, "avg_at_k": 0.4, "probe": 0.4},
        "ptq": {"gptq-w2": {"domains": {dom: {"easy": tier, "avg_at_k": 0.3} for dom in ("traces", "general")},
                            "aligned_vs": {"general": {"fp_minus_other": gap, **verdict}}}},
        "qat": {"bits": 2, "objective": "kd", "domains": {
            dom: {"probe_init": 0.2, "steps_to_target": [20, None, 30], "reached_share": 2 / 3,
                  "area_after_start": 0.3, "final_avg_at_k": 0.35, "final_avg_at_k_sd": 0.01}
            for dom in ("traces", "general")},
            "aligned_vs": {"general": {"converges_faster": verdict, "ends_higher": verdict}}},
    }


def test_tables_on_fixed_metrics(tmp_path):
    for name, (gap, lo) in {"r1": (0.10, 0.01), "r2": (0.01, 0.01), "r3": (0.10, -0.01)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(_metrics(gap, lo)))
    res = CT.load_calib(tmp_path)
    pc = CT.ptq_claims(res).set_index("reasoner")
    assert pc.loc["r1", "verdict"] == "holds" and pc.loc["r1", "traces − vs, points"] == "+5.0 [+1.0, +9.0]"
    assert pc.loc["r2", "verdict"] == "not testable here"  # PTQ loses 1 point, within 2 se
    assert pc.loc["r3", "verdict"] == "does not hold"
    qt = CT.qat_table(res)
    assert qt.loc[0, "steps to target"] == "20, -, 30" and qt.loc[0, "final"] == "35.0 ± 1.0"
    assert len(CT.qat_claims(res)) == 3 * 2
    assert set(CT.ptq_table(res)["model"]) == {"FP", "GPTQ-W2"}
    assert list(CT.load_calib(tmp_path, ["r2"])) == ["r2"]
    with pytest.raises(FileNotFoundError, match="quant_calib"):
        CT.load_calib(tmp_path / "none")


def test_curves_merge_probe_and_loss(tmp_path):
    run = tmp_path / "r1" / "traces-s0"
    run.mkdir(parents=True)
    (run / "probe.tsv").write_text("step\tprobe_acc\n0\t0.1\n10\t0.3\n")
    (run / "loss.tsv").write_text("step\tloss\n5\t2.0\n10\t1.5\n")
    (tmp_path / "r1" / "junk").mkdir()
    c = CT.load_calib_curves(tmp_path)
    assert list(c.step) == [0, 5, 10] and c.set_index("step").loc[10, "loss"] == 1.5
    assert set(c.domain) == {"traces"} and set(c.seed) == {0}
    assert pd.isna(c.set_index("step").loc[5, "probe_acc"])


def test_loss_table_pairs_inits_by_seed():
    rows = []
    for dom, scale in (("traces", 1.0), ("general", 3.0)):
        for seed in (0, 1):
            for step, base in ((5, 0.1), (10, 0.05)):
                rows.append({"reasoner": "r", "domain": dom, "seed": seed, "step": step, "probe_acc": float("nan"),
                             "loss": scale * base * (1 + seed)})
    t = CT.loss_table(pd.DataFrame(rows)).set_index("domain")
    assert t.loc["general", "x traces"] == pytest.approx(3.0) and t.loc["traces", "x traces"] == pytest.approx(1.0)
    assert t.loc["general", "above traces in every seed"] and not t.loc["traces", "above traces in every seed"]
    assert t.loc["traces", "last loss"] == "0.0750 ± 0.0354"  # seeds 0.05 and 0.10
    assert CT.loss_table(pd.DataFrame(rows).assign(loss=float("nan"))).empty
