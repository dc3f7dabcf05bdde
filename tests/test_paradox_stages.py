"""The paradox stages end to end on the smoke profile, the report's table helpers, the config.

The smoke profile is shrunk further only where the paradox needs it: the families are pretrained
for 300 steps (30 steps write no complete solution) so that rejection sampling finds a few correct
traces, and the reward pool also uses the families' real failed samples.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import copy  # noqa: E402
import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from conftest import ROOT, check_kill_and_resume, run_stage  # noqa: E402
from reasonlab.paradox.config import ParadoxParams  # noqa: E402
from reasonlab.params import ParamsError, parse_params  # noqa: E402
from reasonlab.profiles import compose, write_params  # noqa: E402

STAGES = ROOT / "stages"
FAMILIES = ("qwen", "llama", "deepseek")
OVERRIDES = [
    "pretrain.steps=300", "pretrain.lr=0.01", "pretrain.ckpt_every=1000", "models.oracle.train.steps=30",
    "paradox.problems.rft=64", "paradox.sample.reward_problems=24",
    "paradox.reward.pool.rft_failed_share=0.3",
    # checkpoints often enough that the kill/resume test can stop a training between two of them
    "paradox.reward.train.steps=24", "paradox.reward.train.ckpt_every=4", "paradox.finetune.train.ckpt_every=1",
]
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The CI box has 2 shared cores; two torch threads under contention thrash."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _stage(name: str, **item) -> None:
    """Run stage ``name`` (cwd: the scratch repository) as dvc.yaml calls it, timing it."""
    t0 = time.perf_counter()
    run_stage(name, yaml.safe_load(Path("params.yaml").read_text()), **item)
    TIMES[name + (f"@{item['item']}" if item else "")] = time.perf_counter() - t0


def _run_all(fams) -> None:
    _stage("paradox_oracle_modes")
    for f in fams:
        _stage("paradox_sample", item=f)
    _stage("paradox_reward_model")
    for f in fams:
        _stage("paradox_variants", item=f)
        _stage("paradox_score", item=f)
        _finetune(f)
        _stage("adaptation_cost", item=f)


def _finetune(f: str) -> None:
    _stage("paradox_finetune", item=f)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A working directory with the smoke world, the smoke models and every paradox stage run once."""
    from reasonlab.models.pretrain import pretrain
    from reasonlab.world.build import make_world

    root = tmp_path_factory.mktemp("paradox")
    data = compose("smoke", ROOT / "conf", OVERRIDES)
    write_params(data, root / "params.yaml")
    P = parse_params(data, cls=ParadoxParams)
    make_world(P.world, P.seed, root / "data" / "world")
    t0 = time.perf_counter()
    for m in (*FAMILIES, "oracle"):
        pretrain(P, m, root / "data" / "world", root / "models" / m, ckpt_root=root / ".ckpt")
    shutil.copytree(ROOT / "stages", root / "stages")
    TIMES["pretrain (setup)"] = time.perf_counter() - t0
    cwd = os.getcwd()
    os.chdir(root)
    try:
        _run_all(FAMILIES)
    finally:
        os.chdir(cwd)
    return root, P


def _json(p: Path):
    return json.loads(p.read_text())


# --------------------------------------------------------------------------- the stages end to end


@pytest.mark.slow
def test_stages_write_their_outputs(repo):
    root, P = repo
    m = _json(root / "metrics/paradox/oracle_modes.json")
    assert m["steps"] == P.paradox.oracle_modes.train.steps and set(m["held_out"]) >= {"synth", "refine", "style"}
    assert (root / "models/oracle_modes/config.json").exists()
    assert (root / "plots/paradox/oracle_modes/plots/metrics/loss.tsv").exists()
    for f in FAMILIES:
        s = _json(root / f"metrics/paradox/sample/{f}.json")
        assert s["rft"]["n_problems"] == 64 and s["rft"]["n_samples"] == 64 * P.paradox.sample.n
        assert s["reward"]["n_problems"] == 24
        sc = _json(root / f"metrics/paradox/score/{f}.json")
        ft = _json(root / f"metrics/paradox/finetune/{f}.json")
        v = _json(root / f"metrics/paradox/variants/{f}.json")
        assert sc["n_ids"] == ft["n_ids"] == v["n_ids"]
        assert set(ft["base"]) == {"avg", "easy", "medium"}
        fa = v["faithfulness"]  # the smoke oracle is the exact one: style keeps the draft's dialect, refine its own
        assert set(fa) >= {"synth", "refine", "style", "refined_differs_share"}
        if fa["style"]["n_tau"]:
            assert -1.0 <= fa["style"]["kendall_tau"] <= 1.0 and fa["style"]["kendall_tau"] > 0  # order mostly kept
        if fa["style"]["n"]:
            assert fa["style"]["draft_dialect_share"] == 1.0 and fa["refine"]["dialects"] == {"oracle": 1.0}
    ho = m["held_out"]["refine"]
    assert ho["n"] == P.paradox.oracle_modes.eval_problems and sum(k["n"] for k in ho["by_kind"].values()) == ho["n"]
    assert ho["retried_pass_rate"] >= ho["pass_rate"] and ho["max_retries"] == P.paradox.oracle_run.max_retries
    print("\nstage wall times (s):", {k: round(v, 1) for k, v in TIMES.items()})


@pytest.mark.slow
def test_five_sets_share_ids_and_oracle_sets_verify(repo):
    from reasonlab.paradox.config import SETS
    from reasonlab.paradox.roles import role_items
    from reasonlab.paradox.variants import assert_same_ids, load_variants
    from reasonlab.world.tasks import open_task

    root, P = repo
    by_pid = {it.pid: it for it in role_items(open_task(root / "data/world"), "rft", 64, P.paradox.problems.seed)}
    sizes = {}
    for f in FAMILIES:
        sets = load_variants(root / f"data/paradox/variants/{f}")
        assert tuple(sets) == SETS
        ids = assert_same_ids(sets)
        sizes[f] = len(ids)
        rft = _json(root / f"data/paradox/samples/{f}/rft.json")
        assert set(ids) <= set(rft["traces"])  # only SLM-solvable problems
        assert list(sets["slm_rft"]["solution"]) == [rft["traces"][pid]["text"] for pid in ids]
        for v in ("oracle_refined", "oracle_synth", "reference", "style_aligned"):
            assert all(by_pid[pid].check(s).all_valid for pid, s in zip(sets[v]["pid"], sets[v]["solution"])), v
    assert any(sizes.values()), f"no family solved anything: {sizes}"


@pytest.mark.slow
def test_reward_pool_composition_matches_params(repo):
    from reasonlab.paradox.reward import PoolComposition

    root, P = repo
    pc = P.paradox.reward.pool
    comp = PoolComposition.from_dict(pc.model_dump(exclude={"eval_pairs"}))
    m = _json(root / "metrics/paradox/reward_model.json")
    assert m["pool"]["n_pairs"] == pc.n_pairs and m["heldout_pairs"] == pc.eval_pairs
    for side in ("chosen", "rejected"):  # the realised dialect shares are the params' (to rounding)
        for d, share in comp.dialect_shares(side).items():
            assert abs(m["pool"]["dialects"][side][d] - share) <= 1 / pc.n_pairs + 1e-9, (side, d)
    # balanced: as many pairs each way across dialects, so a dialect-only scorer ties everywhere
    assert abs(m["pool"]["cross_dialect_share"] - pc.cross_dialect_share) <= 1 / pc.n_pairs + 1e-9
    assert m["dialect_detector_acc"] == m["dialect_detector_train_acc"] == 0.5
    assert set(m["within_dialect_acc"]) == {"oracle", "qwen", "llama", "deepseek"}
    assert all(k.startswith("oracle over ") or k.endswith(" over oracle") for k in m["cross_dialect_acc"])
    assert sum(g["n"] for grp in ("within_dialect_acc", "cross_dialect_acc") for g in m[grp].values()) == pc.eval_pairs
    pool = _json(root / "models/reward_model/pool.json")
    assert len(pool["pairs"]) == pc.n_pairs and len(pool["eval_pairs"]) == pc.eval_pairs
    n_failed = sum(p["rejected_kind"] == "rft_failed" for p in pool["pairs"])
    n_small = sum(p["rejected_dialect"] != "oracle" for p in pool["pairs"])
    assert abs(n_failed - pc.rft_failed_share * n_small) <= 3  # rounded per small dialect
    assert all(p["rejected_dialect"] != "oracle" for p in pool["pairs"] if p["rejected_kind"] == "rft_failed")
    # the pool's problems are disjoint from the problems of the sets (the RM never saw them)
    sets_pids = set().union(*(_json(root / f"data/paradox/samples/{f}/rft.json")["traces"] for f in FAMILIES))
    assert not {p["pid"] for p in pool["pairs"]} & sets_pids
    from reasonlab.paradox.reward import load_reward_model

    rm, _ = load_reward_model(root / "models/reward_model")
    assert type(rm).__name__.endswith("ForSequenceClassification")


@pytest.mark.slow
def test_scores_and_students(repo):
    from reasonlab.paradox.students import students
    from reasonlab.paradox.variants import load_variants

    root, P = repo
    ft_cfg = P.paradox.finetune
    for f in FAMILIES:
        sc = _json(root / f"metrics/paradox/score/{f}.json")
        ft = _json(root / f"metrics/paradox/finetune/{f}.json")
        recs = _json(root / f"data/paradox/students/{f}/students.json")
        rft = _json(root / f"data/paradox/samples/{f}/rft.json")["traces"]
        if rft:  # the flaws behind right answers, over every chosen RFT trace
            fl = sc["rft_traces"]
            assert fl["n"] == fl["n_correct"] == len(rft)
            n_valid = sum(t["all_valid"] for t in rft.values())
            assert fl["flawed_share"] == pytest.approx(1 - n_valid / len(rft))
            assert (fl["flawed_share"] > 0) == any(v > 0 for v in fl["by_kind"].values())
        if sc["n_ids"] == 0:
            assert sc["sets"] == {} and ft["sets"] == {} and recs["students"] == []
            continue
        for s, d in sc["sets"].items():
            assert d["rm_ci95"][0] <= d["rm_score"] <= d["rm_ci95"][1]
            assert 0 <= d["step_validity"] <= 1 and d["ppl"] > 1
            assert min(d[f"ppl_q{i}"] for i in range(1, 5)) <= d["ppl"] <= max(d[f"ppl_q{i}"] for i in range(1, 5))
        for s, d in sc["sets"].items():  # the paired difference on identical ids is the difference of the means
            diff = d["rm_minus_slm_rft"]
            if s == "slm_rft":
                assert diff is None
            else:
                assert diff["mean"] == pytest.approx(d["rm_score"] - sc["sets"]["slm_rft"]["rm_score"], abs=1e-5)
                assert diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
        assert sc["sets"]["oracle_synth"]["step_validity"] == 1.0  # verified oracle output
        assert sc["sets"]["oracle_synth"]["flawed_share"] == 0.0
        assert len(recs["students"]) == len(students(P.paradox)) == 5 * len(ft_cfg.objectives) * len(ft_cfg.seeds)
        assert {r["steps"] for r in recs["students"]} == {ft["steps"]}  # the same budget for every set
        for s, objs in ft["sets"].items():
            for o, d in objs.items():
                seeds = [r for r in recs["students"] if r["set"] == s and r["objective"] == o]
                vals = [r["avg_at_k"] for r in sorted(seeds, key=lambda r: r["seed"])]
                assert d["per_seed"] == vals and d["avg"] == pytest.approx(sum(vals) / len(vals))
        assert (root / f"plots/paradox/finetune/{f}/slm_rft-sft-s0/plots/metrics/loss.tsv").exists()
        # a student is reused only from one trained on the very same data, objective and seed, and then for all of them
        data = {k: list(zip(d["pid"], d["solution"])) for k, d in load_variants(root / f"data/paradox/variants/{f}").items()}
        by_name = {r["student"]: r for r in recs["students"]}
        for r in recs["students"]:
            if "same_as" in r:
                src = by_name[r["same_as"]]
                assert "same_as" not in src and data[src["set"]] == data[r["set"]] and src["set"] != r["set"]
                assert (src["objective"], src["seed"], src["avg_at_k"]) == (r["objective"], r["seed"], r["avg_at_k"])
        trained = {(str(data[r["set"]]), r["objective"], r["seed"]) for r in recs["students"] if "same_as" not in r}
        assert len(trained) == len([r for r in recs["students"] if "same_as" not in r])  # nothing trained twice


@pytest.mark.slow
def test_finetune_resumes_and_reuses_finished_students(repo, capsys):
    root, _ = repo
    f = next(f for f in FAMILIES if _json(root / f"metrics/paradox/score/{f}.json")["n_ids"])
    before = _json(root / f"metrics/paradox/finetune/{f}.json")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        _finetune(f)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "finished earlier: reusing" in out
    after = _json(root / f"metrics/paradox/finetune/{f}.json")
    assert after["sets"] == before["sets"]


@pytest.mark.slow
@pytest.mark.parametrize("stage, item, marker, outputs", [
    ("paradox_oracle_modes", {}, ".ckpt/paradox-oracle-modes-*/checkpoint.json", ["models/oracle_modes/model.safetensors"]),
    ("paradox_reward_model", {}, ".ckpt/paradox-reward-model-*/checkpoint.json", ["models/reward_model/model.safetensors"]),
    ("paradox_finetune", {"item": "qwen"}, ".ckpt/paradox-ft-qwen-*/checkpoint.json", []),
])
def test_a_training_stage_killed_mid_run_resumes_to_the_same_result(repo, stage, item, marker, outputs):
    """SIGKILL as soon as the first checkpoint is written, run again: the uninterrupted run's result."""
    root, _ = repo
    check_kill_and_resume(root, {**os.environ, "PYTHONPATH": str(ROOT / "src")}, stage, item, marker, outputs)


@pytest.mark.slow
def test_report_notebook_renders(repo):
    from reasonlab.report import run_notebook

    root, P = repo
    params = {"metrics_dir": str(root / "metrics/paradox"), "score_dir": str(root / "data/paradox/score"),
              "students_dir": str(root / "data/paradox/students"), "families": list(P.paradox.families),
              "objectives": list(P.paradox.finetune.objectives)}
    page = run_notebook("paradox", root / "reports/paradox", params, notebooks=ROOT / "notebooks")
    html = page.read_text()
    assert "Does the paper" in html and "agree with the paper" in html
    assert (root / "reports/paradox/tables/paradox_main.csv").exists()
    assert (root / "reports/paradox/figures/rm_vs_utility.png").exists()
    assert "dialect_detector_acc" in html and (root / "reports/paradox/tables/reward_model_accuracy.csv").exists()
    assert "Flaws behind right answers" in html and (root / "reports/paradox/tables/rft_flaws.csv").exists()


@pytest.mark.slow
def test_adaptation_stage(repo):
    """adaptation_cost on the smoke profile: the five sets' perplexity is the scoring stage's, the sweep's sets are
    valid derivations of the same atoms, every level has its students, and the verdict reads the intervals."""
    root, P = repo
    ac = P.paradox.adaptation
    tested = 0
    for f in FAMILIES:
        m = _json(root / f"metrics/adaptation/{f}.json")
        a = _json(root / f"data/adaptation/{f}/adaptation.json")
        sc = _json(root / f"metrics/paradox/score/{f}.json")
        assert m["n_ids"] == sc["n_ids"]
        if not m["n_ids"]:
            assert "not_testable" in m["sweep"]
            continue
        tested += 1
        for name, d in sc["sets"].items():
            assert m["sets"][name]["ppl"] == d["ppl"] and m["sets"][name]["ppl_q1"] == d["ppl_q1"]
        assert m["logic_all_valid"] == 1.0 and m["logic_same_atoms"] == 1.0
        assert len(m["drift_ppl"]) == len(ac.levels) + ac.order_axis
        for name, la in a["loss_attribution"].items():
            shares = sum(c["loss_share"] for c in la["quarter"]["by_class"].values())
            assert shares == pytest.approx(1.0), name
        recs = a["records"]
        assert len(recs) == len(m["drift_ppl"]) * len(ac.objectives) * len(ac.seeds)
        assert {r["steps"] for r in recs} == {m["steps"]}
        rows = __import__("pandas").read_parquet(root / f"data/adaptation/{f}/per_problem.parquet")
        assert set(rows["set"]) == set(m["drift_ppl"]) | {"base"}
        for o, by_u in m["drift_utility"].items():
            for u, v in by_u.items():
                assert v["verdict"] in ("holds", "does not hold", "not testable here")
                assert len(v["per_level"]) == len(ac.levels)
                lo, hi = v["last_minus_first_ci95"]
                assert lo <= v["last_minus_first"] <= hi
                if v["verdict"] == "holds":
                    assert v["spearman_ci95"][1] < 0 and hi < 0
            assert m["drift_utility_spearman"][o]["rho"] == pytest.approx(by_u["acc"]["spearman"], nan_ok=True)
    assert tested, "no family had ids: the sweep never ran"


@pytest.mark.slow
def test_adaptation_report_renders(repo):
    from reasonlab.report import run_notebook

    root, P = repo
    params = {"metrics_dir": str(root / "metrics/adaptation"), "data_dir": str(root / "data/adaptation"),
              "score_metrics": str(root / "metrics/paradox/score"), "finetune_metrics": str(root / "metrics/paradox/finetune"),
              "families": list(P.paradox.families), "objectives": list(P.paradox.adaptation.objectives)}
    page = run_notebook("adaptation", root / "reports/adaptation", params, notebooks=ROOT / "notebooks")
    html = page.read_text()
    assert "causal drift sweep" in html and "Loss attribution" in html
    for t in ("perplexity", "mechanism", "quarter_ranking", "loss_attribution_q1", "sweep", "sweep_claims"):
        assert (root / f"reports/adaptation/tables/{t}.csv").exists(), t
    assert (root / "reports/adaptation/figures/drift_sweep.png").exists()


@pytest.mark.slow
def test_empty_sets_flow_through(repo, tmp_path):
    """With paradox.problems.min_ids=0 a family that solved nothing yields empty sets, not a crash."""
    from reasonlab.paradox.drivers.finetune import finetune_family
    from reasonlab.paradox.drivers.score import score_family
    from reasonlab.paradox.oracle import oracle_run, expert_oracle
    from reasonlab.paradox.rejection import RejectionResult
    from reasonlab.paradox.variants import build_variants, load_variants, save_variants

    root, P = repo
    import functools

    vs = build_variants(RejectionResult({}, {}, {}), [], functools.partial(oracle_run, expert_oracle))
    save_variants(vs, tmp_path / "variants")
    assert all(len(d) == 0 for d in load_variants(tmp_path / "variants").values())
    sc = score_family(P, "qwen", root / "models/qwen", root / "models/reward_model", root / "data/world",
                      root / "data/paradox/samples/qwen", tmp_path / "variants", tmp_path / "score")
    assert sc["n_ids"] == 0 and sc["sets"] == {}
    ft = finetune_family(P, "qwen", root / "models/qwen", root / "data/world", tmp_path / "variants",
                         tmp_path / "students", tmp_path / "plots", ckpt_root=root / ".ckpt")
    assert ft["sets"] == {} and "avg" in ft["base"]


@pytest.mark.slow
def test_too_few_surviving_problems_make_the_family_not_testable(repo, tmp_path):
    """Below paradox.problems.min_ids surviving problems the family's sets go on empty and the metrics say why,
    with the numbers (the report prints it), instead of stopping the pipeline."""
    from reasonlab.paradox.drivers.variants import make_variants
    from reasonlab.paradox.variants import load_variants

    root, P = repo
    f = next(f for f in FAMILIES if _json(root / f"metrics/paradox/variants/{f}.json")["n_ids"])
    kept = _json(root / f"metrics/paradox/variants/{f}.json")["n_ids"]
    problems = P.paradox.problems.model_copy(update={"min_ids": kept + 1})
    strict = P.model_copy(update={"paradox": P.paradox.model_copy(update={"problems": problems})})
    m = make_variants(strict, f, root / "models/oracle_modes", root / "data/world", root / f"data/paradox/samples/{f}",
                      tmp_path / "variants")
    assert m["n_ids"] == 0 and m["n_surviving"] == kept
    assert f"{kept} of {m['n_solvable']} solvable problems survive" in m["not_testable"]
    assert f"min_ids={kept + 1}" in m["not_testable"]
    assert all(len(d) == 0 for d in load_variants(tmp_path / "variants").values())
    m_ok = make_variants(P, f, root / "models/oracle_modes", root / "data/world", root / f"data/paradox/samples/{f}",
                         tmp_path / "variants_ok")
    assert m_ok["not_testable"] is None and m_ok["n_ids"] == kept


# --------------------------------------------------------------------------- the paradox stages of dvc.yaml


def _lookup(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


PARADOX_STAGES = {"paradox_oracle_modes", "paradox_sample", "paradox_reward_model", "paradox_variants",
                  "paradox_score", "paradox_finetune", "report_paradox"}


@pytest.mark.slow
def test_dvc_yaml_paradox_stages_params_and_dag(tmp_path):
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = {k: v for k, v in dvc_yaml["stages"].items() if k in PARADOX_STAGES}
    assert set(stages) == PARADOX_STAGES
    params = compose("tiny", ROOT / "conf")
    for name, st in stages.items():
        body = st.get("do", st)
        for key in body.get("params", []):
            key = re.sub(r"\$\{([\w.]+)\}", lambda m: str(_lookup(params, m.group(1))), key)
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key!r} not in params.yaml"
                node = node[part]
        script = body["cmd"].split()[1]
        assert (ROOT / script).exists(), script
    # fine-tuning params re-run only the fine-tuning (and the report)
    uses_ft = [n for n, st in stages.items() if any(k.startswith("paradox.finetune") and k != "paradox.finetune.train.max_len"
                                                   for k in st.get("do", st).get("params", []))]
    assert uses_ft == ["paradox_finetune", "report_paradox"]
    # DVC accepts the pipeline and orders the stages
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    write_params(params, tmp_path / "params.yaml")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, env=env, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot", "paradox_finetune@qwen"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "paradox_variants@qwen" in r.stdout and "paradox_sample@qwen" in r.stdout
    r = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot", "report_paradox"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for s in ("paradox_reward_model", "paradox_score@llama", "paradox_finetune@deepseek", "paradox_sample@deepseek"):
        assert s in r.stdout, s


# --------------------------------------------------------------------------- table helpers


def _fixed_metrics():
    """Two families, two seeds; utility in [0, 1], RM scores arbitrary."""
    def score(rm, sv, ppl):
        return {"n_ids": 10, "sets": {s: {"rm_score": rm[i], "rm_ci95": [rm[i] - 0.1, rm[i] + 0.1], "step_validity": sv[i],
                                          "ppl": ppl[i], **{f"ppl_q{q}": ppl[i] + q for q in range(1, 5)},
                                          "tv_distance": 0.1 * i, "symbolic_share": 0.0, "mean_tokens": 20.0}
                                      for i, s in enumerate(("slm_rft", "oracle_refined", "oracle_synth", "reference", "style_aligned"))}}

    def ft(vals):  # vals[set] = (sft seeds, dft seeds)
        return {"k": 16, "sets": {s: {o: {"avg": sum(v) / 2, "sd": 0.0, "per_seed": list(v), "seeds": [0, 1]}
                                      for o, v in zip(("sft", "dft"), pair)} for s, pair in vals.items()}}

    score_m = {"a": score([1.0, 1.5, 2.0, 0.5, 1.1], [0.9, 1, 1, 1, 1], [2, 6, 8, 5, 2.1]),
               "b": score([1.2, 1.6, 1.4, 0.6, 1.0], [0.8, 1, 1, 1, 1], [3, 7, 9, 6, 3.2])}
    ft_m = {"a": ft({"slm_rft": ((0.30, 0.34), (0.36, 0.38)), "oracle_refined": ((0.28, 0.30), (0.30, 0.32)),
                     "oracle_synth": ((0.20, 0.22), (0.24, 0.26)), "reference": ((0.1, 0.1), (0.1, 0.1)),
                     "style_aligned": ((0.40, 0.42), (0.40, 0.44))}),
            "b": ft({"slm_rft": ((0.10, 0.14), (0.16, 0.18)), "oracle_refined": ((0.14, 0.14), (0.10, 0.12)),
                     "oracle_synth": ((0.00, 0.02), (0.04, 0.06)), "reference": ((0.1, 0.1), (0.1, 0.1)),
                     "style_aligned": ((0.20, 0.22), (0.20, 0.24))})}
    return score_m, ft_m


def test_main_table_means_and_sds_over_seeds():
    from reasonlab.paradox.tables import MEAN, format_main_table, main_table

    score_m, ft_m = _fixed_metrics()
    df = main_table(score_m, ft_m)
    assert len(df) == 15 and list(df["family"].unique()) == ["a", "b", MEAN]
    r = df[(df.family == "a") & (df.set == "slm_rft")].iloc[0]
    assert r.sft_avg == pytest.approx(32.0) and r.sft_sd == pytest.approx(math.sqrt(((30 - 32) ** 2 + (34 - 32) ** 2) / 1))
    assert r.rm == 1.0 and r.step_validity == pytest.approx(90.0)
    m = df[(df.family == MEAN) & (df.set == "slm_rft")].iloc[0]
    # the family mean is taken per seed (seed 0: (30+10)/2 = 20, seed 1: (34+14)/2 = 24), then mean ± sd over seeds
    assert m.sft_seeds == {0: pytest.approx(20.0), 1: pytest.approx(24.0)}
    assert m.sft_avg == pytest.approx(22.0) and m.sft_sd == pytest.approx(math.sqrt(8))
    assert m.rm == pytest.approx(1.1) and m.rm_lo == pytest.approx(1.1 - 0.1 * math.sqrt(2) / 2)
    show = format_main_table(df, k=16)
    assert list(show.columns) == ["family", "set", "RM score", "step validity (%)", "SFT Avg@16 (%)", "DFT Avg@16 (%)"]
    assert show.iloc[0]["RM score"] == "1.00 [0.90, 1.10]" and show.iloc[0]["SFT Avg@16 (%)"] == "32.0 ± 2.8"
    # mean of 1.0 +- 0.1 and 1.2 +- 0.1: half-width sqrt(2) * 0.1 / 2
    assert show[show.family == MEAN].iloc[0]["RM score"] == "1.10 [1.03, 1.17]"


def test_ordering_checks_say_where_the_paper_holds():
    from reasonlab.paradox.tables import main_table, ordering_checks, ordering_summary

    score_m, ft_m = _fixed_metrics()
    checks = ordering_checks(main_table(score_m, ft_m))
    a = checks[checks.family == "a"]
    assert a["holds"].all()  # family a follows the paper exactly
    b = checks[checks.family == "b"].set_index(["metric", "higher"])
    assert not b.loc[("RM score", "Oracle-Synthesized"), "holds"]  # 1.4 <= 1.6
    assert b.loc[("RM score", "Oracle-Refined"), "holds"]
    assert not b.loc[("SFT Avg@k", "SLM-RFT"), "holds"]  # 12 <= 14
    assert b.loc[("DFT Avg@k", "SLM-RFT"), "holds"]  # 17 > 11
    # uncertainty: a 9-point gap over seeds with sd ~2 is clear, a 3-point one with sd ~2.8 is not
    sft_a = checks[(checks.family == "a") & (checks.metric == "SFT Avg@k")].set_index("higher")
    assert sft_a.at["Style-Aligned", "diff"] == pytest.approx(9.0)
    assert sft_a.at["Style-Aligned", "se"] == pytest.approx(math.sqrt((2 ** 0.5) ** 2 / 2 + (8 ** 0.5) ** 2 / 2))
    assert sft_a.at["Style-Aligned", "clear"] and not sft_a.at["SLM-RFT", "clear"]
    rm_a = checks[(checks.family == "a") & (checks.metric == "RM score")].set_index("higher")
    assert rm_a.at["Oracle-Synthesized", "se"] == pytest.approx(math.sqrt(2) * 0.1 / 1.96)
    assert rm_a.at["Oracle-Synthesized", "clear"]  # 0.5 apart, CIs of +-0.1
    # a chain holds only with every pair in order and clear: a's SFT chain is in order with one pair within noise
    assert (checks[(checks.family == "a") & (checks.metric == "SFT Avg@k")]["verdict"] == "does not hold").all()
    text = ordering_summary(checks, k=16)
    assert "SFT Avg@16: **does not hold** (" in text and "SLM-RFT > Oracle-Refined (within noise)" in text
    rm_verdict = checks[(checks.family == "a") & (checks.metric == "RM score")]["verdict"].iloc[0]
    assert rm_verdict == ("holds" if (rm_a["holds"] & rm_a["clear"]).all() else "does not hold")
    assert f"Family `a`: RM score: **{rm_verdict}**" in text
    assert "Oracle-Synthesized 1.40 ≤ Oracle-Refined 1.60" in text
    assert f"Of {len(checks)} pairwise comparisons {int(checks['holds'].sum())} agree" in text


def test_paradox_claim_against_the_least_favourable_oracle_set():
    from reasonlab.paradox.tables import main_table, paradox_claim, paradox_claim_summary

    score_m, ft_m = _fixed_metrics()
    claim = paradox_claim(main_table(score_m, ft_m)).set_index(["family", "metric"])
    a_rm = claim.loc[("a", "RM score")]
    assert a_rm.oracle_set == "Oracle-Refined" and a_rm["diff"] == pytest.approx(0.5) and a_rm.clear
    a_sft = claim.loc[("a", "SFT Avg@k")]  # SLM-RFT 32 vs the better oracle student (refined, 29)
    assert a_sft.oracle_set == "Oracle-Refined" and a_sft["diff"] == pytest.approx(3.0) and not a_sft.clear
    b_sft = claim.loc[("b", "SFT Avg@k")]  # SLM-RFT 12 < refined 14: against the paper
    assert b_sft["diff"] == pytest.approx(-2.0) and not b_sft.clear
    text = paradox_claim_summary(paradox_claim(main_table(score_m, ft_m)), k=16)
    assert "Family `a`: **holds in direction, not clearly in every metric**" in text
    assert "Family `b`: **does not hold**" in text
    assert "SFT Avg@16 -2.00" in text
    # the RM difference uses the paired interval over the same problems where the score stage measured it
    assert a_rm.se == pytest.approx(math.sqrt(2) * 0.1 / 1.96)
    paired = copy.deepcopy(score_m)
    paired["a"]["sets"]["oracle_refined"]["rm_minus_slm_rft"] = {"mean": 0.5, "ci95": [-0.1, 1.1]}
    a_rm = paradox_claim(main_table(paired, ft_m)).set_index(["family", "metric"]).loc[("a", "RM score")]
    assert a_rm.se == pytest.approx(1.2 / 2 / 1.96) and not a_rm.clear  # 0.5 < 2 x 0.306


def test_cost_table_and_rank_correlation():
    from reasonlab.paradox.tables import cost_table, rank_correlation, spearman

    score_m, ft_m = _fixed_metrics()
    cost = cost_table(score_m, ft_m)
    assert len(cost) == 10 and cost.iloc[0]["ppl_q2"] == 4 and cost.iloc[0]["sft_avg"] == pytest.approx(32.0)
    rc = rank_correlation(cost, "ppl", "sft_avg")
    assert list(rc["family"]) == ["a", "b"] and (rc["spearman"] < 0).all()
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_tables_with_no_data():
    from reasonlab.paradox.tables import cost_table, format_main_table, main_table, ordering_checks, ordering_summary

    empty = {"x": {"n_ids": 0, "sets": {}}}
    df = main_table(empty, {"x": {"sets": {}}})
    assert df.empty and format_main_table(df).empty
    assert "No ordering can be checked" in ordering_summary(ordering_checks(df))
    assert cost_table(empty, {}).empty


# --------------------------------------------------------------------------- config


def _smoke():
    return compose("smoke", ROOT / "conf")


@pytest.mark.parametrize("path, value, match", [
    ("finetune.train.lr", -1.0, r"paradox\.finetune\.train\.lr"),
    ("finetune.train.steps", 5, r"paradox\.finetune\.train.*exactly one of steps and epochs"),
    ("finetune.epoch", 2, r"paradox\.finetune\.epoch: Extra inputs"),
    ("finetune.objectives", ["sft", "kl"], r"paradox\.finetune\.objectives"),
    ("finetune.seeds", [0, 0], r"paradox\.finetune.*seeds has duplicates"),
    ("student_eval.k", 0, r"paradox\.student_eval\.k"),
    ("sample.temperature", 0, r"paradox\.sample\.temperature"),
    ("reward.pool.hard_share", 0.9, r"paradox\.reward\.pool.*hard_share \+ rft_failed_share must be <= 1"),
    ("reward.pool.chosen_oracle_share", 1.5, r"paradox\.reward\.pool\.chosen_oracle_share"),
    ("reward.pool.chosen", {"oracle": 1.0}, r"paradox\.reward\.pool\.chosen: Extra inputs"),
    ("oracle_modes.kind_weights", {"typo": 1.0}, r"paradox\.oracle_modes\.kind_weights\.typo"),
    ("templates.refine", "{problem} only", r"paradox\.templates.*refine: missing placeholders \['draft'\]"),
    ("sample.reward_problems", 0, r"paradox.*rft_failed_share.*sample\.reward_problems"),
])
def test_config_errors_name_the_key(path, value, match):
    d = _smoke()
    node = d["paradox"]
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    if path == "sample.reward_problems":  # the smoke pool has no rft_failed share: use it
        d["paradox"]["reward"]["pool"]["rft_failed_share"] = 0.3
    if path == "reward.pool.hard_share":
        d["paradox"]["reward"]["pool"]["rft_failed_share"] = 0.3
    with pytest.raises(ParamsError, match=match):
        parse_params(d, cls=ParadoxParams)


def test_cross_section_checks_name_the_key(smoke_world):
    from reasonlab.paradox.roles import role_items
    from reasonlab.world.tasks import open_task

    d = _smoke()
    d["paradox"]["families"] = ["qwen", "mistral"]
    with pytest.raises(ParamsError, match=r"paradox\.families: 'mistral' is not a models entry"):
        parse_params(d, cls=ParadoxParams)  # checked whenever a paradox stage reads params.yaml
    d["paradox"]["families"] = ["qwen", "reasoner_s"]
    with pytest.raises(ParamsError, match=r"paradox\.families: models\.reasoner_s has role 'reasoner'"):
        parse_params(d, cls=ParadoxParams)
    with pytest.raises(ParamsError, match=r"paradox\.families .* does not list 'llama'"):
        pc = parse_params(_smoke(), cls=ParadoxParams).paradox
        pc.model_copy(update={"families": ["qwen"]}).check_family("llama")
    task = open_task(smoke_world)
    with pytest.raises(ParamsError, match=r"paradox\.problems\.rft=10000 exceeds"):
        role_items(task, "rft", 10000, 0)
    # the roles are disjoint and do not depend on each other's sizes
    a = {p.pid for p in role_items(task, "rft", 20, 0)}
    b = {p.pid for p in role_items(task, "reward", 20, 0)}
    assert not a & b
    assert [p.pid for p in role_items(task, "rft", 10, 0)] == [p.pid for p in role_items(task, "rft", 20, 0)][:10]


def test_grid_commands():
    from reasonlab.paradox.grid import grid_commands

    cmds = grid_commands([1e-3, 3e-4], [8])
    assert cmds == [
        "dvc exp run --queue -n ft-lr1e-03-bs8 -S paradox.finetune.train.lr=0.001 -S paradox.finetune.train.batch_size=8",
        "dvc exp run --queue -n ft-lr3e-04-bs8 -S paradox.finetune.train.lr=0.0003 -S paradox.finetune.train.batch_size=8"]
    smoke = grid_commands([1e-3], [8], queue=False, extra=["profile=smoke"])
    assert smoke == ["dvc exp run -n ft-lr1e-03-bs8 -S profile=smoke -S paradox.finetune.train.lr=0.001 "
                     "-S paradox.finetune.train.batch_size=8"]
    P = parse_params(compose("tiny", ROOT / "conf"), cls=ParadoxParams)  # every -S key exists in params.yaml
    assert P.paradox.finetune.train.lr > 0 and P.paradox.finetune.train.batch_size > 0
    with pytest.raises(ValueError, match="--set"):
        grid_commands([1e-3], [8], extra=["profile"])


def test_finetune_budget_is_the_same_for_every_set():
    from reasonlab.schema import TrainParams

    def steps(n, epochs, bs):
        return TrainParams(epochs=epochs, batch_size=bs, lr=1e-3).resolve(n).steps

    assert steps(10, 1, 8) == 2 and steps(16, 1, 8) == 2 and steps(3, 2.5, 4) == 2
    P = parse_params(_smoke(), cls=ParadoxParams)
    ft = P.paradox.finetune.train
    cfg = ft.resolve(40)
    assert cfg.steps == 5 and cfg.warmup == int(0.1 * 5) and cfg.batch_size == ft.batch_size and cfg.lr == ft.lr
    with pytest.raises(ValueError, match="no examples"):
        ft.resolve(0)


def test_grid_summary_reads_dvc_exp_show_json():
    from reasonlab.paradox.grid import grid_summary

    def data(lr, bs, rft, orc):
        ft = {"sets": {"slm_rft": {"sft": {"avg": rft}}, "oracle_refined": {"sft": {"avg": orc}},
                       "oracle_synth": {"sft": {"avg": orc - 0.01}}}}
        ft_params = {"train": {"lr": lr, "batch_size": bs}, "seeds": [0]}
        return {"params": {"params.yaml": {"data": {"paradox": {"finetune": ft_params}}}},
                "metrics": {f"metrics/paradox/finetune/{f}.json": {"data": ft} for f in ("a", "b")}}

    show = [{"rev": "workspace", "name": None, "data": data(3e-4, 8, 0.30, 0.20), "experiments": None},
            {"rev": "abc1234def", "name": "main", "data": data(3e-4, 8, 0.30, 0.20),  # same as the workspace
             "experiments": [{"revs": [{"rev": "e1", "name": "grid-a", "data": data(1e-3, 8, 0.10, 0.12)}]},
                             {"revs": [{"rev": "e2", "name": "no-metrics", "data": {"params": {}, "metrics": {}}}]}]}]
    df = grid_summary(show, ["a", "b"], sets=("slm_rft", "oracle_refined", "oracle_synth"))
    assert list(df["run"]) == ["workspace", "grid-a"]
    assert df.iloc[0]["slm_rft"] == pytest.approx(30.0) and df.iloc[0]["gap"] == pytest.approx(10.0)
    assert df.iloc[1]["lr"] == 1e-3 and df.iloc[1]["gap"] == pytest.approx(-2.0)
