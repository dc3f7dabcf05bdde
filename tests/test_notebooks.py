"""The report notebooks: jupytext percent sources under notebooks/, rendered by papermill + nbconvert to clean HTML."""

import ast
import json
import re
import runpy
import sys

import pytest

from conftest import ROOT
from reasonlab.report import REPORTS, run_notebook

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def _read(path):
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters'"
    return cells[0]


def test_one_notebook_per_report():
    assert [p.stem for p in NOTEBOOKS] == sorted(REPORTS)
    assert not list((ROOT / "notebooks").glob("*.ipynb")), "notebooks are kept as jupytext .py only"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_a_clean_jupytext_percent_notebook(path):
    import nbformat

    text = path.read_text()
    header = text.split("# ---\n")[1]
    assert "format_name: percent" in header and "name: python3" in header, "jupytext header with kernelspec python3"
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = _parameters_cell(nb)
    assert params.cell_type == "code"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    for c in nb.cells:  # every code cell is valid Python (no stray magics or markdown)
        if c.cell_type == "code":
            ast.parse(c.source)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_parameters_cell_declares_what_the_stage_passes(name):
    """papermill only warns about unknown parameters: every one the report stage injects must be declared."""
    import yaml

    from reasonlab.params import parse_params
    from reasonlab.profiles import compose

    declared = {t.id for node in ast.parse(_parameters_cell(_read(ROOT / "notebooks" / f"{name}.py")).source).body
                if isinstance(node, ast.Assign) for t in node.targets}
    P = parse_params(compose("smoke", ROOT / "conf"), "smoke")  # what the report stage reads: the foundation's view
    passed = set(runpy.run_path(str(ROOT / "stages" / "report.py"))["NOTEBOOK_PARAMS"][name](P))
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][f"report_{name}"]["cmd"]
    passed |= set(re.findall(r"--input (\w+)=", cmd))  # the input folders, from dvc.yaml
    assert passed | {"out_dir"} <= declared


def test_missing_notebook_names_the_py_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.py"):
        run_notebook("nope", tmp_path / "out", {}, notebooks=tmp_path)


def _eval_metrics(k, acc):
    tiers = {}
    for i, tier in enumerate(("easy", "medium", "hard")):
        p = max(0.0, acc - 0.2 * i)
        tiers[tier] = {f"avg@{k}": p, f"avg@{k}_ci95": [max(0.0, p - 0.1), min(1.0, p + 0.1)],
                       f"pass@{k}": min(1.0, p + 0.1), "greedy": p,
                       "greedy_ci95": [max(0.0, p - 0.15), min(1.0, p + 0.15)], "mean_len_tokens": 40.0 + i,
                       "step_validity": 0.9, "n_problems": 12}
    return {"k": k, "temperature": 1.0, **tiers}


def _pretrain_metrics(model):
    return {"model": model, "arch": "LlamaForCausalLM", "params": 30048, "non_embedding_params": 20640,
            "dialect_mix": {model: 500, "reference": 10}, "steps": 30, "final_loss": 3.5, "wall_s": 1.2,
            "tokens_per_s": 41125.5}


def _strip_embedded_data(html: str) -> str:
    return re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+", "", html)


def test_base_models_report_renders_clean(tmp_path, smoke_world, monkeypatch):
    for model, acc in (("qwen", 0.6), ("llama", 0.4)):
        for part, m in (("eval", _eval_metrics(4, acc)), ("pretrain", _pretrain_metrics(model))):
            (tmp_path / "metrics" / part).mkdir(parents=True, exist_ok=True)
            (tmp_path / "metrics" / part / f"{model}.json").write_text(json.dumps(m))
    monkeypatch.chdir(tmp_path)
    page = run_notebook("base_models", tmp_path / "reports" / "base_models",
                        {"eval_dir": str(tmp_path / "metrics/eval"), "pretrain_dir": str(tmp_path / "metrics/pretrain"),
                         "world_dir": str(smoke_world), "sample_index": 0},
                        notebooks=ROOT / "notebooks")
    out = tmp_path / "reports" / "base_models"
    assert page == out / "base_models.html"
    assert (out / "base_models.ipynb").exists() and not (tmp_path / "reports" / "base_models.tmp").exists()
    assert {p.name for p in (out / "figures").glob("*.png")} == {"base_avg_at_k.png", "base_greedy.png"}
    assert (out / "tables" / "base_accuracy.csv").exists()

    html = page.read_text()
    assert "Accuracy by tier" in html and "One training problem, in every dialect" in html
    assert "60.0 [50.0, 70.0]" in html  # qwen easy Avg@4 with its CI
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 2  # both figures are shown, embedded
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # no stderr (warnings) box
    assert "jp-OutputArea-output" in html and "Traceback" not in html
    text = _strip_embedded_data(html)
    assert "Warning" not in text
    for path in {str(tmp_path), str(ROOT), str(smoke_world), sys.prefix, "site-packages"}:
        assert path not in text, f"machine path {path!r} in the rendered page"

    nb = json.loads((out / "base_models.ipynb").read_text())
    streams = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] in ("stream", "error")]
    assert streams == [], streams


_PROBE = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # probe

# %% tags=["parameters"]
out_dir = "."
tag = ""

# %%
import json, pathlib
from ipykernel.connect import get_connection_info
info = get_connection_info(unpack=True)
pathlib.Path(out_dir, "kernel.json").write_text(json.dumps({"tag": tag, "transport": info["transport"], "ip": info["ip"]}))
'''


def _render_probe(args):
    notebooks, out, tag = args
    run_notebook("probe", out, {"tag": tag}, notebooks=notebooks)
    return json.loads((out / "kernel.json").read_text())


def test_reports_rendered_at_the_same_moment_do_not_share_kernel_ports(tmp_path):
    """Two pipelines side by side start kernels at the same moment: over TCP they can draw the same free port and
    one kernel dies before replying. Each kernel gets unix sockets in its own private dir instead."""
    import multiprocessing as mp

    (tmp_path / "probe.py").write_text(_PROBE)
    jobs = [(tmp_path, tmp_path / f"out{i}", str(i)) for i in range(3)]
    with mp.get_context("spawn").Pool(3) as pool:
        infos = pool.map(_render_probe, jobs)
    assert [i["tag"] for i in infos] == ["0", "1", "2"]
    assert all(i["transport"] == "ipc" for i in infos), infos
    assert len({i["ip"] for i in infos}) == 3
