"""Build the whole tiny world: problems by tier, a disjoint training pool with
its solutions in every dialect, the general corpus and the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, load_from_disk

from ..params import WorldParams
from ..schema import TIERS
from .corpus import general_corpus
from .dialects import DIALECTS, render_solution
from .problems import Problem, ProblemSpec, make_problems, problem_key
from .tokenizer import build_tokenizer


def spec_of(p: WorldParams) -> ProblemSpec:
    return ProblemSpec(max_value=p.max_value, given_range=tuple(p.given_range), const_range=tuple(p.const_range))


def problem_rows(problems: list[Problem], dialects=tuple(DIALECTS)) -> dict[str, list]:
    cols: dict[str, list] = {"pid": [], "text": [], "steps": [], "answer": [], "graph": []}
    for d in dialects:
        cols[f"sol_{d}"] = []
    for p in problems:
        rec = p.to_record()
        for k in ("pid", "text", "steps", "answer"):
            cols[k].append(rec[k])
        cols["graph"].append(json.dumps({"item": rec["item"], "graph": rec["graph"]}))
        for d in dialects:
            cols[f"sol_{d}"].append(render_solution(p, d))
    return cols


def build_world(p: WorldParams, seed: int, out: Path) -> dict:
    """Generate the world into ``out`` and return a summary (counts, vocabulary size)."""
    spec = spec_of(p)
    tests: dict[str, list[Problem]] = {}
    seen: set[str] = set()
    for tier in TIERS:
        lo, hi = getattr(p.tiers, tier)
        raw = make_problems(seed, p.test_size * 2, list(range(lo, hi + 1)), spec, prefix=tier[0])
        uniq = [q for q in raw if problem_key(q) not in seen]
        if len(uniq) < p.test_size:
            raise ValueError(f"world.test_size={p.test_size} too large for tier {tier!r}: only {len(uniq)} unique problems")
        tests[tier] = uniq[: p.test_size]
        seen.update(problem_key(q) for q in tests[tier])
    lo, hi = p.train_steps
    pool = make_problems(seed, int(p.train_size * 1.2) + 16, list(range(lo, hi + 1)), spec, prefix="t")
    train, keys = [], set()
    for q in pool:
        k = problem_key(q)
        if k in seen or k in keys:  # no leakage into any test set, no duplicates
            continue
        keys.add(k)
        train.append(q)
        if len(train) == p.train_size:
            break
    if len(train) < p.train_size:
        raise ValueError(f"world.train_size={p.train_size}: only {len(train)} unique problems could be generated")

    general = general_corpus(seed, p.general_size)
    out.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(problem_rows(train)).save_to_disk(str(out / "train"))
    for tier, probs in tests.items():
        Dataset.from_dict(problem_rows(probs)).save_to_disk(str(out / f"test_{tier}"))
    Dataset.from_dict({"text": general}).save_to_disk(str(out / "general"))

    texts = [q.text for q in train[:2000]] + general[:500]
    for d in DIALECTS:
        texts += [render_solution(q, d) for q in train[:500]]
    max_number = max(p.max_value, hi + 10, p.tiers.hard[1] + 10)
    tok = build_tokenizer(texts, max_number=max_number)
    tok.save_pretrained(str(out / "tokenizer"))
    summary = {
        "train": len(train),
        **{f"test_{t}": len(v) for t, v in tests.items()},
        "general": len(general),
        "vocab_size": len(tok),
        "train_steps": [lo, hi],
        "tiers": {t: list(getattr(p.tiers, t)) for t in TIERS},
    }
    return summary


def make_world(p: WorldParams, seed: int, out: Path) -> dict:
    """The world ``p`` asks for (the tiny world, or with ``p.hub`` the paper world's hub data sets) into ``out``,
    with its ``task.json`` (:mod:`reasonlab.world.tasks`); returns a summary."""
    from .hub import build_world_from_hub
    from .tasks import write_task_file

    if p.hub:
        summary = build_world_from_hub(p.hub, seed, out)
        write_task_file(out, "hub", hub=p.hub)
    else:
        summary = build_world(p, seed, out)
        write_task_file(out, "tiny")
    return summary


def load_split(world_dir: str | Path, split: str) -> Dataset:
    path = Path(world_dir) / split
    if not path.exists():
        raise FileNotFoundError(f"world split not found: {path} (run the `world` stage first)")
    try:
        return load_from_disk(str(path))
    except Exception as e:  # corrupt arrow files, missing state.json, ...
        raise ValueError(f"cannot read world split {path}: {e}") from e


def row_problem(row: dict, where: str = "") -> Problem:
    """Rebuild the :class:`Problem` of a dataset row, with an error naming the row on bad data."""
    try:
        g = json.loads(row["graph"])
        return Problem.from_record({"pid": row["pid"], "item": g["item"], "graph": g["graph"]})
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: row pid={row.get('pid')!r} is not a valid problem: {e}") from e


def load_problems(world_dir: str | Path, split: str) -> list[Problem]:
    ds = load_split(world_dir, split)
    where = str(Path(world_dir) / split)
    probs = []
    for i, row in enumerate(ds):
        try:
            probs.append(row_problem(row, where))
        except ValueError as e:
            raise ValueError(f"{e} (row {i})") from e
    return probs
