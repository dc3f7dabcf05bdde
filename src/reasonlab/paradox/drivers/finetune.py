"""Stage ``paradox_finetune@<family>``: every student (set x objective x seed), then Avg@k per tier.

The students are a :func:`~reasonlab.paradox.cohort.train_cohort` (resumable, each keyed by what determines its
weights; changing ``paradox.student_eval`` re-evaluates without retraining).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_json
from ...models.zoo import load_lm
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..cohort import train_cohort
from ..students import aggregate_students, paired_differences, precondition, problem_scores, students
from ..variants import load_variants


def finetune_family(P: ParadoxParams, family: str, model_dir: str | Path, world_dir: str | Path,
                    variants_dir: str | Path, out: str | Path, plots_dir: str | Path,
                    ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``paradox_finetune@<family>``: train and evaluate every student of ``family``.

    Writes ``out/students.json`` (one record per student, and the base model's evaluation) and the
    students' training curves (dvclive) to ``plots_dir/<student>/``; returns the mean and sd over
    seeds of Avg@k per set and objective, overall and per tier.
    """
    setup_threads()
    P.paradox.check_family(family)
    pc, ev = P.paradox, P.paradox.student_eval
    sets = load_variants(variants_dir)
    n_ids = len(next(iter(sets.values())))
    cfg = pc.finetune.train.resolve(max(n_ids, 1))
    base, tok = load_lm(model_dir)
    suite = eval_suite(open_task(world_dir), ev)
    base_digest = digest(model_dir)
    eval_spec = {"eval": ev.model_dump(), "seed": P.seed, "rows": 1}
    base_ev = Run(f"paradox-base-{family}", {"model": base_digest}, ckpt_root).cached(
        "eval", eval_spec, lambda: evaluate_suite(base, tok, suite, ev, P.seed, rows=True))
    rows = [{"set": "base", "objective": "-", "seed": -1, **r} for r in base_ev.pop("rows")]
    plots_tmp = fresh_tmp_dir(plots_dir)
    t_all = time.perf_counter()
    runs = students(pc) if n_ids else []  # no ids (min_ids=0): the base model only
    cohort = train_cohort(base, tok, base_digest, sets, runs, cfg, suite, ev, P.seed, run_prefix=f"paradox-ft-{family}",
                          ckpt_root=ckpt_root, plots_dir=plots_tmp, log=f"finetune {family}")
    records, rows = cohort.records, rows + cohort.rows
    tmp = fresh_tmp_dir(out)
    df = pd.DataFrame(rows)
    df.to_parquet(tmp / "per_problem.parquet", index=False)
    diffs = paired_differences(problem_scores(df), pc.finetune.objectives, seed=P.seed) if records else {}
    pre = precondition(diffs)
    write_json(tmp / "students.json", {"family": family, "k": ev.k, "tiers": list(ev.tiers), "steps": cfg.steps,
                                       "train": cfg.model_dump(), "base": base_ev, "students": records})
    replace_dir(tmp, out)
    replace_dir(plots_tmp, plots_dir)
    return {"family": family, "k": ev.k, "n_ids": n_ids, "steps": cfg.steps, "lr": cfg.lr, "batch_size": cfg.batch_size,
            "epochs": pc.finetune.train.epochs, "base": {"avg": base_ev["avg_at_k"], **{t: base_ev[t]["avg_at_k"] for t in ev.tiers}},
            "sets": aggregate_students(records, ev.tiers), "precondition": pre,
            "precondition_met": all(v["met"] for v in pre.values()) if pre else None,
            "slm_rft_minus": diffs, "wall_s": time.perf_counter() - t_all}
