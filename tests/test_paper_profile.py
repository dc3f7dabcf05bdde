"""The paper profile's code path end to end, on local stand-ins (tests/standins.py).

`dvc repro` of the whole pipeline with the ``paper_standin`` profile: the paper's hub model ids (resolved
from a local Hugging Face cache), its data sets (local folders with the hub columns), chat templates for
the oracle's modes, ``\\boxed{}`` answers checked by math-verify, a released-style reward model. Then:
a stage that cannot serve the paper world stops at once, saying so; and a fine-tune under
``accelerate launch`` with 2 CPU processes gives the loss curve of 1 process.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_repo(pipelines):
    run = pipelines["paper"].wait()
    return run.repo, run.env, run


@pytest.fixture(scope="module")
def standins(paper_repo, pipelines):
    return pipelines["standins"]  # built by the paper run before its repro


def _json(p):
    return json.loads(p.read_text())


def test_dvc_repro_of_the_whole_pipeline_on_the_stand_ins(paper_repo):
    repo, _, r = paper_repo
    assert r.returncode == 0, r.output[-8000:]
    assert not r.attempts.exists(), r.attempts.read_text()  # no network from the paper code path either
    task = _json(repo / "data/world/task.json")
    assert task["kind"] == "hub" and task["hub"]["easy"]["path"].endswith("openai/gsm8k")
    # every base model is the hub checkpoint, evaluated with \boxed{} answers
    assert not (repo / "models/qwen").exists()  # trimmed
    for m in ("llama", "oracle", "reasoner_s"):
        assert _json(repo / f"models/{m}/meta.json")["hub_id"]
        ev = _json(repo / f"metrics/eval/{m}.json")
        assert set(ev) >= {"easy", "medium", "hard"} and 0 <= ev["easy"]["avg@2"] <= 1
    assert _json(repo / "models/oracle_modes/meta.json")["hub_id"] == "Qwen/Qwen2.5-72B-Instruct"
    assert _json(repo / "models/reward_model/meta.json")["hub_id"].startswith("Skywork/")
    # the families solved some problems, the chat oracle wrote verified sets, students were trained on them
    n_ids = {f: _json(repo / f"metrics/paradox/variants/{f}.json")["n_ids"] for f in ("llama",)}
    assert any(n_ids.values()), n_ids
    f = max(n_ids, key=n_ids.get)
    sc = _json(repo / f"metrics/paradox/score/{f}.json")
    assert sc["n_ids"] == n_ids[f] and set(sc["sets"]) == {"slm_rft", "oracle_refined", "oracle_synth", "reference",
                                                           "style_aligned"}
    for s in sc["sets"].values():  # the hub reward model scored every set; free-form math has no step checker
        assert s["rm_ci95"][0] <= s["rm_score"] <= s["rm_ci95"][1] and s["ppl"] > 1
        assert s["step_validity"] is None or s["step_validity"] != s["step_validity"]  # NaN (written as null)
    ft = _json(repo / f"metrics/paradox/finetune/{f}.json")
    assert ft["n_ids"] == n_ids[f] and ft["sets"]["slm_rft"]["sft"]["per_seed"]
    # quantization: PTQ with llm-compressor and QAT on the hub reasoner, packed checkpoints
    ptq = _json(repo / "metrics/quant/ptq/reasoner_s.json")
    assert {"fp", "gptq-w2"} <= set(ptq["models"]) and ptq["models"]["gptq-w2"]["weights_bytes"] < ptq["models"]["fp"]["weights_bytes"]
    assert _json(repo / "metrics/quant/qat/reasoner_s-w2.json")["runs"]
    for rep in ("base_models", "paradox", "quant"):
        assert (repo / f"reports/{rep}/{rep}.html").exists()
    # nothing in the paper code path read the tiny world
    assert not (repo / "data/world/tokenizer").exists()


def test_a_stage_that_cannot_serve_the_paper_world_stops_at_once(paper_repo):
    """The exact-target oracle needs the tiny world's graphs: the stage says so before doing any work."""
    repo, env, r = paper_repo
    assert r.returncode == 0
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["paradox"]["oracle_run"]["proposer"] = "expert"
    bad = repo / "params_expert.yaml"
    bad.write_text(yaml.safe_dump(params))
    out = subprocess.run([sys.executable, "stages/paradox_variants.py", "llama", "--params", str(bad), "--oracle",
                          "models/oracle_modes", "--world", "data/world", "--samples", "data/paradox/samples/llama",
                          "--out", str(repo / "scratch_variants"), "--metrics", str(repo / "scratch.json")],
                         cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "needs the tiny world's computation graphs" in out.stderr and "hub world" in out.stderr
    assert not (repo / "scratch_variants").exists() and not (repo / "scratch.json").exists()


def test_a_fine_tune_under_accelerate_launch_with_2_processes_matches_1(standins, tmp_path):
    """The one training loop under `accelerate launch` (2 CPU processes, gloo): the loss curve of 1 process."""
    root, env = standins
    data = tmp_path / "sft.jsonl"
    from standins import _solution, build_data

    train = build_data(tmp_path / "data", n_train=64, n_test=2)["train"]
    data.write_text("".join(json.dumps({"prompt": p.text + "\n", "solution": _solution(p)}) + "\n" for p in train))
    run_env = {**os.environ, **env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    curves = {}
    for n in (1, 2):
        out = tmp_path / f"p{n}"
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               "-m", "reasonlab.models.sft", "--model", "Qwen/Qwen2.5-Math-1.5B", "--data", str(data),
               "--out", str(out), "--steps", "12", "--batch-size", "8", "--lr", "3e-3", "--seed", "0"]
        if n == 1:  # one process: plain python, no launcher (what a stage does)
            cmd = [sys.executable, *cmd[cmd.index("-m", 3):]]
        r = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-4000:]
        res = _json(out / "sft.json")
        assert res["processes"] == n, res  # a wrong launch runs n independent single-process trainings
        curves[n] = res["loss"]
    assert len(curves[1]) == len(curves[2]) == 12
    assert max(abs(a - b) for a, b in zip(curves[1], curves[2])) < 1e-5, (curves[1], curves[2])
    assert curves[1][-1] < curves[1][0]
