"""The task layer: the items of either world through one interface.

Every stage gets its problems from :func:`open_task` (``data/world`` says which world it holds, in
``task.json``, written by the ``world`` stage) and never asks which world it is in:

* :class:`Item` one problem: its id, text, the prompt a model is given, a checker returning a
  verdict (``correct``, ``answer``, ``step_validity``, ``dialect``, ``has_answer``, ``all_valid``,
  ``atoms``), a reference solution and, in the tiny world, its computation graph;
* :class:`TinyTask` the generated world: prompts ``<bos> {problem} <sol>``, the exact verifier, the
  graph behind every problem (drafts, dialect renderings, information atoms);
* :class:`HubTask` the paper world: hub data sets in the same layout, prompts from the profile's
  template, ``\\boxed{}`` answers checked by math-verify, no graphs.

Capabilities that only the tiny world has (``has_graphs``) are asked for by :meth:`Task.require_graphs`,
which stops a stage at once with a message naming what it needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from .build import load_split, row_problem
from .dialects import render_solution
from .hub import check_math
from .problems import Problem
from .tokenizer import prompt_text
from .verifier import verify

TASK_FILE = "task.json"


@dataclass(frozen=True)
class Item:
    """One problem of a task (see the module docstring)."""

    pid: str
    text: str
    prompt: str
    check: Callable[[str], object] = field(compare=False, repr=False)
    reference: str | None = None
    problem: Problem | None = field(default=None, compare=False, repr=False)


def tiny_item(problem: Problem, reference: str | None = None) -> Item:
    """The item of a tiny-world problem: prompt ``<bos> {problem} <sol>``, the exact verifier, its graph, and a
    reference solution (default: the problem rendered in the textbook dialect)."""
    ref = reference if reference is not None else render_solution(problem, "reference")
    return Item(problem.pid, problem.text, prompt_text(problem.text), partial(verify, problem), ref, problem)


class Task:
    """The items of one world (built by :func:`open_task`)."""

    kind = ""
    has_graphs = False

    def __init__(self, world_dir: str | Path):
        self.world_dir = Path(world_dir)

    def _items(self, split: str, rows) -> list[Item]:  # pragma: no cover - abstract
        raise NotImplementedError

    def tier_items(self, tier: str, limit: int | None = None) -> list[Item]:
        """The first ``limit`` problems of test tier ``tier``."""
        ds = load_split(self.world_dir, f"test_{tier}")
        if limit:
            ds = ds.select(range(min(limit, len(ds))))
        return self._items(f"test_{tier}", ds)

    def split_size(self, split: str) -> int:
        """Problems in ``split`` (``train``, ``heldout``, ``validation``)."""
        return len(load_split(self.world_dir, split))

    def split_items(self, split: str, indices: Sequence[int]) -> list[Item]:
        """The problems of ``split`` at ``indices`` (in that order)."""
        ds = load_split(self.world_dir, split)
        return self._items(split, ds.select([int(i) for i in indices]))

    @property
    def train_size(self) -> int:
        return self.split_size("train")

    def train_items(self, indices: Sequence[int]) -> list[Item]:
        """The pretraining-pool problems at ``indices`` (in that order)."""
        return self.split_items("train", indices)

    @property
    def heldout_size(self) -> int:
        return self.split_size("heldout")

    def heldout_items(self, indices: Sequence[int]) -> list[Item]:
        """The held-out pool's problems at ``indices``: never seen in pretraining (paradox roles, QAT traces)."""
        return self.split_items("heldout", indices)

    def general_texts(self) -> list[str]:
        """The general-domain corpus (no arithmetic): a calibration domain other than reasoning."""
        return [t for t in load_split(self.world_dir, "general")["text"] if t.strip()]

    def solution(self, item: Item, dialect: str) -> str | None:
        """A correct solution of ``item`` in ``dialect``: the world's reference solution where it has no
        dialects (``None`` where it has none at all)."""
        return item.reference

    def require_graphs(self, what: str) -> None:
        """Stop at once, naming ``what``, when this world has no computation graphs behind its problems."""
        if not self.has_graphs:
            raise RuntimeError(f"{what} needs the tiny world's computation graphs (drafts, dialects, step "
                               f"checking); the {self.kind} world at {self.world_dir} has none")


class TinyTask(Task):
    kind = "tiny"
    has_graphs = True

    def _items(self, split: str, rows) -> list[Item]:
        where = str(self.world_dir / split)
        out = []
        for i, row in enumerate(rows):
            try:
                p = row_problem(row, where)
            except ValueError as e:
                raise ValueError(f"{e} (row {i})") from e
            out.append(tiny_item(p, row.get("sol_reference")))
        return out

    def solution(self, item: Item, dialect: str) -> str | None:
        return render_solution(item.problem, dialect)


class HubTask(Task):
    kind = "hub"

    def _items(self, split: str, rows) -> list[Item]:
        need = {"pid", "text", "prompt", "answer"} - set(rows.column_names)
        if need:
            raise ValueError(f"{self.world_dir / split}: missing columns {sorted(need)}")
        return [Item(r["pid"], r["text"], r["prompt"], partial(check_math, r["answer"]), r.get("sol_reference"))
                for r in rows]


TASKS = {t.kind: t for t in (TinyTask, HubTask)}


def write_task_file(world_dir: str | Path, kind: str, **info) -> None:
    if kind not in TASKS:
        raise ValueError(f"task kind must be one of {sorted(TASKS)}, got {kind!r}")
    (Path(world_dir) / TASK_FILE).write_text(json.dumps({"kind": kind, **info}, indent=2))


def open_task(world_dir: str | Path) -> Task:
    """The task of the world in ``world_dir`` (as its ``task.json`` says)."""
    path = Path(world_dir) / TASK_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the `world` stage first")
    try:
        kind = json.loads(path.read_text())["kind"]
        return TASKS[kind](world_dir)
    except (json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{path}: not a task file ({type(e).__name__}: {e}); re-run the `world` stage") from None
