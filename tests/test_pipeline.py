"""The smoke profile end to end, and what a user relies on.

`dvc repro` inside a fresh copy of the repository (its own git repository), with every non-loopback
network connection refused and recorded; then a no-op repro; a second clean copy gives the same metrics;
a training stage killed with SIGKILL mid-run and re-run ends with the same weights and metrics.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, check_kill_and_resume, stable_metrics


def _dvc(repo, env, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_runs(pipelines):
    """Two clean copies reproduced side by side (the second one, a subset of the stages, for the determinism
    check)."""
    return [pipelines["smoke_a"].wait(), pipelines["smoke_b"].wait()]


@pytest.fixture(scope="module")
def smoke_repo(smoke_runs):
    a = smoke_runs[0]
    return a.repo, a.env, a, a.attempts


@pytest.mark.slow
def test_smoke_dvc_repro_end_to_end(smoke_repo):
    repo, env, r, attempts = smoke_repo
    assert r.returncode == 0, r.output[-6000:]
    # the pipeline opened no network connection (none was attempted, so none failed quietly)
    assert not attempts.exists(), attempts.read_text()
    for m in ("qwen", "llama", "deepseek", "oracle"):
        assert (repo / "models" / m / "config.json").exists()
        ev = json.loads((repo / "metrics" / "eval" / f"{m}.json").read_text())
        assert set(ev) >= {"easy", "medium", "hard"}
        assert 0.0 <= ev["medium"]["avg@2"] <= 1.0
        assert (repo / "plots" / "pretrain" / m / "plots" / "metrics" / "loss.tsv").exists()
    html = (repo / "reports" / "base_models" / "base_models.html").read_text()
    assert "Accuracy by tier" in html and "One training problem, in every dialect" in html
    assert (repo / "reports" / "base_models" / "figures" / "base_avg_at_k.png").exists()
    index = (repo / "reports" / "index.html").read_text()
    assert "base_models/base_models.html" in index and 'href="verdicts/verdicts.md"' in index
    # everything is cached: a second repro does nothing and says so
    r2 = _dvc(repo, env, "repro")
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "up to date" in r2.stdout.lower(), r2.stdout
    # metrics are visible to `dvc metrics show` (and so to `dvc exp show`)
    r3 = _dvc(repo, env, "metrics", "show", "--json")
    assert r3.returncode == 0 and "avg@2" in r3.stdout


def _metrics(repo: Path) -> dict:
    return {str(f.relative_to(repo)): stable_metrics(json.loads(f.read_text())) for f in sorted((repo / "metrics").rglob("*.json"))}


@pytest.mark.slow
def test_two_clean_clones_give_identical_metrics(smoke_runs):
    a, b = smoke_runs
    assert a.returncode == 0 and b.returncode == 0, b.output[-3000:]
    assert not b.attempts.exists()
    ma, mb = _metrics(a.repo), _metrics(b.repo)
    # the copies start without metrics: every file here was written by its run
    assert len(ma) >= 29 and len(mb) >= 18 and mb.keys() <= ma.keys(), sorted(set(mb) - set(ma))
    assert {"metrics/paradox/reward_model.json", "metrics/paradox/finetune/llama.json",
            "metrics/quant/qat/reasoner_s-w2.json"} <= mb.keys()
    assert [k for k in mb if ma[k] != mb[k]] == []


@pytest.mark.slow
@pytest.mark.parametrize("stage, item, marker, outputs", [
    ("pretrain", {"key": "qwen"}, ".ckpt/pretrain-qwen-*/checkpoint.json", ["models/qwen/model.safetensors"]),
    ("quant_qat", {"reasoner": "reasoner_s", "bits": 2}, ".ckpt/quant-qat-reasoner_s-w2-*/checkpoint.json",
     ["models/quant/reasoner_s/qat-w2/sft-gptq-s0/model.safetensors",
      "models/quant/reasoner_s/qat-w2/kd-gptq-s1/model.safetensors"]),
])
def test_a_training_stage_killed_mid_run_resumes_to_the_same_result(smoke_repo, stage, item, marker, outputs):
    """SIGKILL as soon as the first checkpoint is written, run again: the uninterrupted run's result."""
    repo, env, r, _ = smoke_repo
    assert r.returncode == 0
    check_kill_and_resume(repo, env, stage, item, marker, outputs)


def test_metrics_are_tracked_by_git_so_dvc_exp_show_can_read_them():
    """DVC metrics are `cache: false`: gitignored, every experiment's row in `dvc exp show` reads '!'."""
    for path in ("metrics/eval/qwen.json", "metrics/paradox/finetune/qwen.json", "metrics/quant/ptq/reasoner_m.json"):
        r = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert r.returncode == 1, f"{path} is gitignored"
