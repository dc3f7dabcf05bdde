"""The robustness grid (fine-tuning learning rate x batch size) as DVC experiments.

    python -m reasonlab.paradox.grid            # print the commands (queue one experiment per cell)
    python -m reasonlab.paradox.grid --run      # queue them and run the queue (one worker)
    python -m reasonlab.paradox.grid --set profile=smoke --run   # the grid on another profile
    python -m reasonlab.paradox.grid --summary  # one row per experiment: Avg@k per set, mean over families

With DVC's Hydra integration every ``dvc exp run -S`` re-composes params.yaml from conf/config.yaml,
whose default profile is ``tiny``: a grid on another profile must say so (``--set profile=smoke``),
or every cell re-runs the whole tiny pipeline.

Each cell changes only ``paradox.finetune.train.lr`` / ``paradox.finetune.train.batch_size``, so DVC re-runs
only the ``paradox_finetune@<family>`` stages (and the report) and reuses every other output;
``dvc exp show --only-changed`` then lists the cells next to their ``metrics/paradox/finetune/*.json``.
The grid values are ``paradox.grid`` in params.yaml.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from typing import Iterator, Sequence

from ..params import load_params
from .config import SETS, ParadoxParams
from .tables import ORACLE_SETS


def grid_commands(lrs, batch_sizes, queue: bool = True, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """One ``dvc exp run`` per (lr, batch size) cell, named ``ft-lr<lr>-bs<bs>`` (e.g. ``ft-lr3e-04-bs8``);
    ``extra`` overrides (``key=value``) go into every cell first (e.g. ``profile=smoke``)."""
    for e in extra:
        if "=" not in e or e.startswith("="):
            raise ValueError(f"--set: expected key=value, got {e!r}")
    pre = "".join(f"-S {shlex.quote(e)} " for e in extra)
    cmds = []
    for lr in lrs:
        for bs in batch_sizes:
            name = f"ft-lr{lr:.0e}-bs{bs}"
            cmds.append(f"dvc exp run {'--queue ' if queue else ''}-n {name} "
                        f"{pre}-S paradox.finetune.train.lr={lr:g} -S paradox.finetune.train.batch_size={bs}")
    return cmds


def _runs(exp_show: list) -> Iterator[tuple[str, dict]]:
    """``(name, data)`` of every commit and experiment in ``dvc exp show --json`` output."""
    for entry in exp_show:
        if entry.get("data"):
            rev = entry["rev"]
            yield entry.get("name") or (rev if rev == "workspace" else rev[:7]), entry["data"]
        for exp in entry.get("experiments") or []:
            for r in exp.get("revs") or []:
                if r.get("data"):
                    yield r.get("name") or r["rev"][:7], r["data"]


def grid_summary(exp_show: list, families: Sequence[str], sets: Sequence[str] = SETS, objective: str = "sft"):
    """One row per run that has fine-tuning metrics for every family: ``lr, batch_size, seeds`` and, per
    set, Avg@k (%) averaged over ``families``; ``gap`` = SLM-RFT minus the better oracle set (the paradox
    says > 0). Duplicate runs (same params and metrics) are listed once."""
    import pandas as pd

    rows, seen = [], set()
    for name, data in _runs(exp_show):
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        ft = params.get("paradox", {}).get("finetune", {})
        per_fam = [((data.get("metrics") or {}).get(f"metrics/paradox/finetune/{f}.json") or {}).get("data") or {}
                   for f in families]
        if not ft or not all(m.get("sets") for m in per_fam):
            continue
        tr = ft.get("train", ft)  # experiments from before the nested `train` section keep them flat
        row = {"run": name, "lr": tr.get("lr"), "batch_size": tr.get("batch_size"), "seeds": len(ft.get("seeds", []))}
        for st in sets:
            vals = [m["sets"].get(st, {}).get(objective, {}).get("avg") for m in per_fam]
            row[st] = 100 * sum(vals) / len(vals) if all(v is not None for v in vals) else float("nan")
        oracle = [row[x] for x in ORACLE_SETS if x in row]
        row["gap"] = row.get("slm_rft", float("nan")) - max(oracle) if oracle else float("nan")
        key = json.dumps({k: v for k, v in row.items() if k != "run"}, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--run", action="store_true", help="queue the experiments and start the queue (1 worker)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override for every cell, e.g. profile=smoke (repeatable)")
    ap.add_argument("--summary", action="store_true",
                    help="print one row per experiment (all commits): Avg@k per set, mean over families")
    a = ap.parse_args(argv)
    P = load_params(a.params, ParadoxParams)
    if a.summary:
        out = subprocess.run(["dvc", "exp", "show", "-A", "--json"], capture_output=True, text=True, check=True).stdout
        df = grid_summary(json.loads(out), P.paradox.families)
        fmt = ["g" if c in ("lr", "batch_size", "seeds") else ".1f" for c in df.columns]
        print(df.to_markdown(index=False, floatfmt=fmt) if not df.empty else "no experiment has fine-tuning metrics")
        return
    g = P.paradox.grid
    cmds = grid_commands(g.lr, g.batch_size, extra=a.set) + ["dvc queue start -j 1",
                                                              "dvc exp show --only-changed --md"]
    if not a.run:
        print("\n".join(cmds))
        return
    for c in cmds[:-1]:
        print("+", c, flush=True)
        subprocess.run(shlex.split(c), check=True)


if __name__ == "__main__":
    main()
