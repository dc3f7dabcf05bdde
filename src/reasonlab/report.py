"""Report helpers: tables and figures the notebooks display, papermill + nbconvert rendering, the index."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from .schema import TIERS

REPORTS = {  # report name -> title, in index order
    "base_models": "Base models: accuracy by tier (foundation)",
    "paradox": "The Quality-Utility Paradox: RM score vs fine-tuned utility, adaptation cost",
    "adaptation": "Adaptation cost: perplexity by quarter, loss attribution, the causal drift sweep",
    "quant": "Low-bit QAT: objective (RQ1), PTQ-init ablation (RQ2), 2-bit recovery",
    "calibration": "Calibration-domain alignment (RQ4): PTQ per calibration domain, QAT from each",
    "two_bit": "2-bit recovery: what PTQ keeps, what QAT wins back, the shipped W2 checkpoint",
}
VERDICTS_PAGE = "verdicts/verdicts.md"  # the `verdicts` stage's table (reasonlab.verdicts), relative to reports/


def load_metrics_dir(path: str | Path) -> dict[str, dict]:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"metrics directory not found: {path}")
    out = {}
    for f in sorted(path.glob("*.json")):
        try:
            out[f.stem] = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e})") from None
    if not out:
        raise FileNotFoundError(f"no metrics in {path}")
    return out


def accuracy_table(eval_metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per (model, tier): Avg@k with its 95% CI, greedy with its CI, pass@k, lengths."""
    rows = []
    for model, m in eval_metrics.items():
        k = m["k"]
        for tier in TIERS:
            if tier not in m:
                continue
            t = m[tier]
            rows.append({
                "model": model, "tier": tier,
                f"Avg@{k}": 100 * t[f"avg@{k}"], "avg_lo": 100 * t[f"avg@{k}_ci95"][0], "avg_hi": 100 * t[f"avg@{k}_ci95"][1],
                "greedy": 100 * t["greedy"], "greedy_lo": 100 * t["greedy_ci95"][0], "greedy_hi": 100 * t["greedy_ci95"][1],
                f"pass@{k}": 100 * t[f"pass@{k}"], "mean_len_tokens": t["mean_len_tokens"],
                "step_validity": 100 * t["step_validity"], "n": t["n_problems"],
            })
    return pd.DataFrame(rows)


def fmt_ci(v: float, lo: float, hi: float) -> str:
    return f"{v:.1f} [{lo:.1f}, {hi:.1f}]"


def save_table(df: pd.DataFrame, out_dir: str | Path, name: str) -> None:
    out = Path(out_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(df.to_markdown(index=False) + "\n")


def save_figure(fig, out_dir: str | Path, name: str) -> Path:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` and ``.svg``; returns the PNG (the notebooks display it)."""
    out = Path(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    return out / f"{name}.png"


def grouped_bars(df: pd.DataFrame, value: str, lo: str, hi: str, group: str, hue: str, ylabel: str, title: str):
    """A grouped bar chart with asymmetric error bars (CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(dict.fromkeys(df[group]))
    hues = list(dict.fromkeys(df[hue]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(groups), 3.6))
    w = 0.8 / max(1, len(hues))
    for j, h in enumerate(hues):
        sub = df[df[hue] == h].set_index(group).reindex(groups)
        x = np.arange(len(groups)) + (j - (len(hues) - 1) / 2) * w
        # clip: an interval bound can sit a rounding error past its point estimate (e.g. Wilson at p=0)
        err = np.clip(np.vstack([sub[value] - sub[lo], sub[hi] - sub[value]]), 0, None)
        ax.bar(x, sub[value], w, yerr=err, capsize=3, label=str(h))
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))  # a share from 0: no negative axis when every bar is 0
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: CIs can reach the top
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


# papermill runs the notebook in an ipykernel shell, so ``tqdm.auto`` (imported via datasets -> huggingface_hub when a
# notebook imports reasonlab.world) takes it for a widget-capable Jupyter frontend, finds no ipywidgets and warns
# "IProgress not found" on stderr, with the venv's path, before falling back to plain bars. A rendered page has no
# widget frontend, so ipywidgets would not help: the kernel drops exactly that warning at start-up, before any cell.
_KERNEL_ARGS = [
    ("--IPKernelApp.exec_lines=__import__('warnings').filterwarnings("
     "'ignore', message='IProgress not found', module='tqdm')"),
]


def run_notebook(name: str, out_dir: str | Path, parameters: dict, notebooks: str | Path = "notebooks") -> Path:
    """Execute ``notebooks/<name>.py`` (jupytext percent format) with papermill and render it to HTML without inputs.

    The notebook is converted to ``<name>.ipynb`` in a temp dir, executed there (kernel python3, ``parameters``
    injected after the cell tagged ``parameters``, plus ``out_dir``), rendered to ``<name>.html`` next to it, and
    the temp dir is moved over ``out_dir`` at the end. Returns the path of the HTML page.
    """
    import jupytext
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    from .io import fresh_tmp_dir, replace_dir

    src = Path(notebooks) / f"{name}.py"
    if not src.exists():
        raise FileNotFoundError(f"notebook not found: {src}")
    out_dir = Path(out_dir)
    tmp = fresh_tmp_dir(out_dir)
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata.pop("jupytext", None)  # the .ipynb is an output, not paired with the source
    executed = tmp / f"{name}.ipynb"
    with tempfile.TemporaryDirectory(prefix="reasonlab-kernel-") as kdir:
        source = Path(kdir) / "source.ipynb"
        nbformat.write(nb, source)
        # the kernel talks over unix sockets in a private dir: with TCP, kernels started at the same moment by
        # two pipelines can pick the same free port and one dies before replying ("Kernel died ...")
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(kdir) / "kernel")}})
        pm.execute_notebook(str(source), str(executed), parameters={**parameters, "out_dir": str(tmp)},
                            kernel_name="python3", progress_bar=False, cwd=os.getcwd(),
                            extra_arguments=_KERNEL_ARGS, config=config)
    body, _ = HTMLExporter(exclude_input=True).from_filename(str(executed))
    (tmp / f"{name}.html").write_text(body)
    replace_dir(tmp, out_dir)
    return out_dir / f"{name}.html"


def write_index(reports_dir: str | Path, out: str | Path) -> None:
    reports_dir = Path(reports_dir)
    items = []
    for name, title in REPORTS.items():
        page = reports_dir / name / f"{name}.html"
        if page.exists():
            figs = sorted((reports_dir / name / "figures").glob("*.png"))
            thumbs = "".join(f'<img src="{name}/figures/{f.name}" height="140">' for f in figs[:3])
            items.append(f'<li><a href="{name}/{name}.html">{html.escape(title)}</a><br>{thumbs}</li>')
        else:
            items.append(f"<li>{html.escape(title)} <em>(not built yet)</em></li>")
    title = "Every claim's verdict, both papers (holds / does not hold / not testable here), read from the reports"
    if (reports_dir / VERDICTS_PAGE).exists():
        items.append(f'<li><a href="{VERDICTS_PAGE}">{html.escape(title)}</a> '
                     f'(<a href="{Path(VERDICTS_PAGE).with_suffix(".csv").as_posix()}">CSV</a>)</li>')
    else:
        items.append(f"<li>{html.escape(title)} <em>(not built yet)</em></li>")
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>reasonlab reports</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}li{margin:1em 0}</style></head><body>"
        "<h1>reasonlab: reports</h1><p>Each page is rendered by a DVC stage from a papermill notebook "
        "(<code>dvc repro</code>).</p><ul>" + "".join(items) + "</ul></body></html>\n"
    )
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc)
    os.replace(tmp, out)
