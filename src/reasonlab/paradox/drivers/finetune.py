"""Stage ``paradox_finetune@<family>``: every student (set x objective x seed), then Avg@k per tier.

Every student is a :class:`~reasonlab.checkpoint.Run` under ``.ckpt/`` keyed by what determines its
weights and by the code: a killed stage resumes in the student it was in; finished students keep their
weights and evaluation (keyed by the eval params), so changing ``paradox.student_eval`` re-evaluates
without retraining.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import pandas as pd

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, params_hash, replace_dir, setup_threads, write_json
from ...models.losses import objective_loss
from ...models.train import train
from ...models.zoo import load_lm
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..students import (aggregate_students, paired_differences, precondition, problem_scores,
                        student_name, students)
from ..variants import load_variants, variant_examples


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
    records = []
    trained: dict[str, dict] = {}  # what determines a student's weights -> its record
    t_all = time.perf_counter()
    for set_name, obj, seed in students(pc) if n_ids else []:  # no ids (min_ids=0): the base model only
        name = student_name(set_name, obj, seed)
        ds = sets[set_name]
        key = {"model": base_digest, "train": cfg.model_dump(), "objective": obj, "seed": seed,
               "set": params_hash(list(zip(ds["pid"], ds["solution"])))}
        same = trained.get(params_hash(key))
        if same is not None:  # identical training data, params and seed: identical weights, so the same record
            records.append({**same, "student": name, "set": set_name, "same_as": same["student"]})
            rows += [{**r, "set": set_name} for r in rows if r["set"] == same["set"] and r["objective"] == obj
                     and r["seed"] == seed]
            if (plots_tmp / same["student"]).exists():
                shutil.copytree(plots_tmp / same["student"], plots_tmp / name)
            print(f"[finetune {family} {name}] same training data as {same['set']}: reusing {same['student']}")
            continue
        run = Run(f"paradox-ft-{family}-{name}", key, ckpt_root)
        desc = f"finetune {family} {name}"
        student = copy.deepcopy(base)
        stats = run.train(student, lambda ck: train(student, variant_examples(ds, tok), cfg, pad_id=tok.pad_token_id,
                                                    seed=seed, ckpt_dir=ck, live_dir=ck / "live",
                                                    loss_fn=objective_loss(obj), desc=desc), desc)
        student.eval()
        res = run.cached("eval", eval_spec, lambda: evaluate_suite(student, tok, suite, ev, P.seed, rows=True))
        rows += [{"set": set_name, "objective": obj, "seed": seed, **r} for r in res.pop("rows")]
        if (run.dir / "live").exists():
            shutil.copytree(run.dir / "live", plots_tmp / name)
        records.append({"student": name, "set": set_name, "objective": obj, "seed": seed, **res,
                        "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"), "steps": stats.get("steps")})
        trained[params_hash(key)] = records[-1]
        print(f"[{desc}] avg@{ev.k}={res['avg_at_k']:.4f} (base {base_ev['avg_at_k']:.4f})")
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
