"""The smoke profile end to end: `dvc repro` inside a temporary git repository, then a no-op repro."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, make_repo


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("smoke_repo"), "smoke")


def _dvc(repo, env, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_smoke_dvc_repro_end_to_end(smoke_repo):
    repo, env = smoke_repo
    r = _dvc(repo, env, "repro")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    for m in ("qwen", "llama", "deepseek", "oracle"):
        assert (repo / "models" / m / "config.json").exists()
        ev = json.loads((repo / "metrics" / "eval" / f"{m}.json").read_text())
        assert set(ev) >= {"easy", "medium", "hard"}
        assert 0.0 <= ev["medium"]["avg@2"] <= 1.0
        assert (repo / "plots" / "pretrain" / m / "plots" / "metrics" / "loss.tsv").exists()
    html = (repo / "reports" / "base_models" / "base_models.html").read_text()
    assert "Accuracy by tier" in html and "One problem in every dialect" in html
    assert (repo / "reports" / "base_models" / "figures" / "base_avg_at_k.png").exists()
    assert "base_models/base_models.html" in (repo / "reports" / "index.html").read_text()
    # everything is cached: a second repro does nothing and says so
    r2 = _dvc(repo, env, "repro")
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "up to date" in r2.stdout.lower(), r2.stdout
    # metrics are visible to `dvc metrics show` (and so to `dvc exp show`)
    r3 = _dvc(repo, env, "metrics", "show", "--json")
    assert r3.returncode == 0 and "avg@2" in r3.stdout


def test_metrics_are_tracked_by_git_so_dvc_exp_show_can_read_them():
    """DVC metrics are `cache: false`: gitignored, every experiment's row in `dvc exp show` reads '!'."""
    for path in ("metrics/eval/qwen.json", "metrics/paradox/finetune/qwen.json", "metrics/quant/ptq/reasoner_m.json"):
        r = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert r.returncode == 1, f"{path} is gitignored"
