"""A cohort of students: one base model fine-tuned on each of several training sets (x objective x seed), every
student evaluated on the same suite with the same sampling seed, per-problem rows kept.

Used by ``paradox_finetune`` (the five sets) and ``adaptation_cost`` (the drift dial's sets). Every student is a
:class:`~reasonlab.checkpoint.Run` under ``.ckpt/`` keyed by what determines its weights: a killed stage resumes in
the student it was in; finished students keep their weights and evaluation (keyed by the eval params), so changing
the evaluation re-evaluates without retraining. Two students with identical training data, params and seed have
identical weights: the second reuses the first's record.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..checkpoint import Run
from ..evaluate import evaluate_suite
from ..io import params_hash
from ..models.losses import objective_loss
from ..models.train import train
from ..schema import SampledEval, TrainParams
from .students import student_name
from .variants import variant_examples


@dataclass
class Cohort:
    """What :func:`train_cohort` returns: one record per student (``student, set, objective, seed``, the
    evaluation's metrics, ``final_loss, train_s, steps``; ``same_as`` when reused) and the per-sample rows of
    every evaluation (:func:`~reasonlab.evaluate.evaluate_suite` ``rows=True``, with ``set, objective, seed``)."""

    records: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


def train_cohort(base, tok, base_digest: str, sets: Mapping[str, object], runs: Sequence[tuple[str, str, int]],
                 cfg: TrainParams, suite: Mapping[str, Sequence], ev: SampledEval, eval_seed: int, *,
                 run_prefix: str, ckpt_root: str | Path, plots_dir: Path | None = None,
                 log: str = "student") -> Cohort:
    """Fine-tune a copy of ``base`` for every ``(set, objective, seed)`` of ``runs`` on ``sets[set]`` (a dataset
    with ``pid, prompt, solution``) with ``cfg``, and evaluate it on ``suite`` (:func:`~reasonlab.evaluate.eval_suite`)
    with ``ev`` and ``eval_seed``. Training curves are copied to ``plots_dir/<student>/`` when given."""
    out = Cohort()
    trained: dict[str, dict] = {}  # what determines a student's weights -> its record
    eval_spec = {"eval": ev.model_dump(), "seed": eval_seed, "rows": 1}
    for set_name, obj, seed in runs:
        name = student_name(set_name, obj, seed)
        ds = sets[set_name]
        key = {"model": base_digest, "train": cfg.model_dump(), "objective": obj, "seed": seed,
               "set": params_hash(list(zip(ds["pid"], ds["solution"])))}
        same = trained.get(params_hash(key))
        if same is not None:  # identical training data, params and seed: identical weights, so the same record
            out.records.append({**same, "student": name, "set": set_name, "same_as": same["student"]})
            out.rows += [{**r, "set": set_name} for r in out.rows if r["set"] == same["set"] and r["objective"] == obj
                         and r["seed"] == seed]
            if plots_dir is not None and (plots_dir / same["student"]).exists():
                shutil.copytree(plots_dir / same["student"], plots_dir / name)
            print(f"[{log} {name}] same training data as {same['set']}: reusing {same['student']}")
            continue
        run = Run(f"{run_prefix}-{name}", key, ckpt_root)
        desc = f"{log} {name}"
        student = copy.deepcopy(base)
        stats = run.train(student, lambda ck: train(student, variant_examples(ds, tok), cfg, pad_id=tok.pad_token_id,
                                                    seed=seed, ckpt_dir=ck, live_dir=ck / "live",
                                                    loss_fn=objective_loss(obj), desc=desc), desc)
        student.eval()
        res = run.cached("eval", eval_spec, lambda: evaluate_suite(student, tok, suite, ev, eval_seed, rows=True))
        out.rows += [{"set": set_name, "objective": obj, "seed": seed, **r} for r in res.pop("rows")]
        if plots_dir is not None and (run.dir / "live").exists():
            shutil.copytree(run.dir / "live", plots_dir / name)
        out.records.append({"student": name, "set": set_name, "objective": obj, "seed": seed, **res,
                            "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"),
                            "steps": stats.get("steps")})
        trained[params_hash(key)] = out.records[-1]
        print(f"[{desc}] avg@{ev.k}={res['avg_at_k']:.4f}")
    return out


__all__ = ["Cohort", "train_cohort"]
