"""The robustness grid (fine-tuning learning rate x batch size) as DVC experiments.

    python -m reasonlab.paradox.grid            # print the commands (queue one experiment per cell)
    python -m reasonlab.paradox.grid --run      # queue them and run the queue (one worker)
    python -m reasonlab.paradox.grid --set profile=smoke --run   # the grid on another profile

With DVC's Hydra integration every ``dvc exp run -S`` re-composes params.yaml from conf/config.yaml,
whose default profile is ``tiny``: a grid on another profile must say so (``--set profile=smoke``),
or every cell re-runs the whole tiny pipeline.

Each cell changes only ``paradox.finetune.lr`` / ``paradox.finetune.batch_size``, so DVC re-runs
only the ``paradox_finetune@<family>`` stages (and the report) and reuses every other output;
``dvc exp show --only-changed`` then lists the cells next to their ``metrics/paradox/finetune/*.json``.
The grid values are ``paradox.grid`` in params.yaml.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess

from ..params import load_params


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
                        f"{pre}-S paradox.finetune.lr={lr:g} -S paradox.finetune.batch_size={bs}")
    return cmds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--run", action="store_true", help="queue the experiments and start the queue (1 worker)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override for every cell, e.g. profile=smoke (repeatable)")
    a = ap.parse_args(argv)
    g = load_params(a.params).paradox.grid
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
