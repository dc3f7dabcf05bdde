"""Build the whole tiny world: problems by tier, the pretraining pool, a held-out pool and a validation
split (all four disjoint by content), every problem's solution in every dialect, the general corpus and
the tokenizer.

* ``train``        the pretraining pool (the families, the oracle and the reasoners learn from it);
* ``heldout``      never seen in pretraining: the paradox roles (RFT, oracle modes, reward model) and the QAT
                   traces are drawn from it, so no fine-tuning set is data a base model has already seen;
* ``validation``   for anything selected or probed during training (never a test tier);
* ``test_<tier>``  the evaluation tiers.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, load_from_disk

from ..params import WorldParams
from ..schema import TIERS
from .audit import world_metrics
from .corpus import general_corpus
from .dialects import DIALECTS, render_solution
from .problems import Problem, ProblemSpec, make_problems, problem_key
from .tokenizer import build_tokenizer


# Problem-id prefix of every split: pids are unique across the whole world (random streams are keyed on them, e.g.
# ``rejection.pid_rng``). World v2 gave the hard tier and the held-out pool the same prefix ``h``.
PREFIX = {"easy": "e", "medium": "m", "hard": "x", "validation": "v", "train": "t", "heldout": "h"}


def spec_of(p: WorldParams) -> ProblemSpec:
    return ProblemSpec(max_value=p.max_value, given_range=tuple(p.given_range), const_range=tuple(p.const_range),
                       branch_share=p.branch_share, distractors=tuple(p.distractors), shuffle=p.shuffle)


def _unique(raw: list[Problem], seen: set[str], n: int, what: str) -> list[Problem]:
    """The first ``n`` problems of ``raw`` whose content is in neither ``seen`` nor earlier ones; ``seen`` grows."""
    out = []
    for q in raw:
        k = problem_key(q)
        if k in seen:
            continue
        seen.add(k)
        out.append(q)
        if len(out) == n:
            return out
    raise ValueError(f"{what}: only {len(out)} unique problems could be generated (asked for {n})")


def problem_rows(problems: list[Problem], dialects=tuple(DIALECTS)) -> dict[str, list]:
    cols: dict[str, list] = {"pid": [], "text": [], "steps": [], "answer": [], "graph": []}
    for d in dialects:
        cols[f"sol_{d}"] = []
    for p in problems:
        rec = p.to_record()
        for k in ("pid", "text", "steps", "answer"):
            cols[k].append(rec[k])
        cols["graph"].append(json.dumps({"item": rec["item"], "graph": rec["graph"], "order": rec.get("order")}))
        for d in dialects:
            cols[f"sol_{d}"].append(render_solution(p, d))
    return cols


def build_world(p: WorldParams, seed: int, out: Path) -> dict:
    """Generate the world into ``out`` and return a summary (counts, vocabulary size)."""
    spec = spec_of(p)
    seen: set[str] = set()
    tests: dict[str, list[Problem]] = {}
    for tier in TIERS:
        lo, hi = getattr(p.tiers, tier)
        raw = make_problems(seed, p.test_size * 2, list(range(lo, hi + 1)), spec, prefix=PREFIX[tier])
        tests[tier] = _unique(raw, seen, p.test_size, f"world.test_size={p.test_size} (tier {tier!r})")
    lo, hi = p.train_steps
    steps = list(range(lo, hi + 1))
    splits = {}
    for split, size in (("validation", p.validation_size), ("train", p.train_size), ("heldout", p.heldout_size)):
        raw = make_problems(seed, int(size * 1.2) + 16, steps, spec, prefix=PREFIX[split])
        splits[split] = _unique(raw, seen, size, f"world.{split}_size={size}")

    general = general_corpus(seed, p.general_size)
    out.mkdir(parents=True, exist_ok=True)
    for split, probs in splits.items():
        Dataset.from_dict(problem_rows(probs)).save_to_disk(str(out / split))
    for tier, probs in tests.items():
        Dataset.from_dict(problem_rows(probs)).save_to_disk(str(out / f"test_{tier}"))
    Dataset.from_dict({"text": general}).save_to_disk(str(out / "general"))

    train = splits["train"]
    texts = [q.text for q in train[:2000]] + general[:500]
    for d in DIALECTS:
        texts += [render_solution(q, d) for q in train[:500]]
    max_number = max(p.max_value, hi + 10, p.tiers.hard[1] + 10)
    tok = build_tokenizer(texts, max_number=max_number)
    tok.save_pretrained(str(out / "tokenizer"))
    audit = world_metrics({**splits, **{f"test_{t}": v for t, v in tests.items()}}, seed)
    return {
        "audit": audit,
        **{s: len(v) for s, v in splits.items()},
        **{f"test_{t}": len(v) for t, v in tests.items()},
        "general": len(general),
        "vocab_size": len(tok),
        "train_steps": [lo, hi],
        "tiers": {t: list(getattr(p.tiers, t)) for t in TIERS},
    }


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
        return Problem.from_record({"pid": row["pid"], "item": g["item"], "graph": g["graph"], "order": g.get("order")})
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
