"""Stage ``adaptation_cost@<family>``: the adaptation cost of the five sets (perplexity by quarter, loss
attribution, token shift, semantic preservation) and the causal drift sweep (students on the same derivations
rendered at several levels of drift)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_json
from ...models.zoo import load_lm
from ...stats import paired_diff, rank_trend
from ...world.tasks import open_task
from ..adaptation import drift_sets, level_name, logic_check, loss_attribution, quarter_ranking, sweep_verdict
from ..analysis import perplexity_from_nll, solution_token_nll_ids
from ..cohort import train_cohort
from ..config import ParadoxParams
from ..roles import role_items
from ..students import UTILITIES, aggregate_students, problem_scores, score_matrix
from ..variants import load_variants


def _seq_log_ppl(traces) -> np.ndarray:
    """Per trace: mean NLL per token (its log perplexity)."""
    return np.array([float(np.mean(nll)) if len(nll) else float("nan") for _, nll in traces])


def adaptation_family(P: ParadoxParams, family: str, model_dir: str | Path, world_dir: str | Path,
                      variants_dir: str | Path, score_dir: str | Path, out: str | Path, plots_dir: str | Path,
                      ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``adaptation_cost@<family>``. Writes ``out/adaptation.json`` (everything the report shows),
    ``out/per_problem.parquet`` (every sweep student's per-sample rows, and the base model's) and the students'
    curves to ``plots_dir/<student>/``; returns the metrics."""
    setup_threads()
    t0 = time.perf_counter()
    P.paradox.check_family(family)
    pc, ac = P.paradox, P.paradox.adaptation
    ev = ac.eval if ac.eval is not None else pc.student_eval.model_copy(
        update={"tiers": [t for t in pc.student_eval.tiers if t != "hard"] or list(pc.student_eval.tiers)})
    sets = load_variants(variants_dir)
    pids = list(sets["slm_rft"]["pid"])
    analysis = json.loads((Path(score_dir) / "analysis.json").read_text())
    task = open_task(world_dir)
    by_pid = {it.pid: it for it in role_items(task, "rft", pc.problems.rft, pc.problems.seed)}
    items = [by_pid[p] for p in pids]
    base, tok = load_lm(model_dir)
    id_to_token = {i: t for t, i in tok.get_vocab().items()}
    res: dict = {"family": family, "n_ids": len(pids), "eval": ev.model_dump(), "levels": list(ac.levels)}

    # 1. the five sets: perplexity by quarter (the scoring stage's), the ranking in every quarter, loss attribution
    ppl = {name: a["perplexity"] for name, a in analysis["sets"].items()}
    res["sets"] = {name: {"ppl": p["ppl"], **{f"ppl_{q.lower()}": p["quarters"][q]["ppl"] for q in p["quarters"]},
                          "token_shift": analysis["sets"][name]["token_shift"],
                          "preservation": analysis["sets"][name].get("preservation", {}).get("mean")}
                   for name, p in ppl.items()}
    res["quarter_ranking"] = quarter_ranking(ppl) if ppl else None
    bs, max_len = pc.analysis.batch_size, pc.finetune.train.max_len
    attribution = {}
    for name, ds in sets.items() if pids else []:
        traces = solution_token_nll_ids(base, tok, list(ds["prompt"]), list(ds["solution"]), bs, max_len)
        attribution[name] = {"quarter": loss_attribution(traces, id_to_token, ac.quarter, ac.top_tokens),
                             "whole": loss_attribution(traces, id_to_token, None, ac.top_tokens)}
    res["loss_attribution"] = attribution

    # 2. the drift sweep: same problems and derivations, rendered at each level
    why = ("no problem ids survived into the five sets" if not pids else
           "the drift dial renders the world's derivation graphs; these problems have none (hub data)"
           if any(it.problem is None for it in items) else None)
    if why:
        res["sweep"] = {"not_testable": why}
        tmp = fresh_tmp_dir(out)
        write_json(tmp / "adaptation.json", res)
        pd.DataFrame().to_parquet(tmp / "per_problem.parquet")
        replace_dir(tmp, out)
        replace_dir(fresh_tmp_dir(plots_dir), plots_dir)
        return {"family": family, "n_ids": len(pids), "sets": res["sets"], "sweep": res["sweep"],
                "wall_s": time.perf_counter() - t0}
    dialect = P.model(family).dialect
    dsets = drift_sets(items, dialect, ac.levels, ac.drift_seed, ac.other, ac.order_axis)
    res["logic"] = logic_check(items, dsets)
    level_traces = {name: solution_token_nll_ids(base, tok, list(ds["prompt"]), list(ds["solution"]), bs, max_len)
                    for name, ds in dsets.items()}
    drift = {name: perplexity_from_nll([nll for _, nll in tr]) for name, tr in level_traces.items()}
    seq = {name: _seq_log_ppl(tr) for name, tr in level_traces.items()}
    names = [level_name(s) for s in ac.levels]
    ppl_moved = paired_diff(seq[names[-1]], seq[names[0]], n_boot=ac.n_boot, seed=P.seed)
    cfg = pc.finetune.train.resolve(len(pids))
    suite = eval_suite(task, ev)
    base_digest = digest(model_dir)
    base_ev = Run(f"paradox-base-{family}", {"model": base_digest}, ckpt_root).cached(
        "eval", {"eval": ev.model_dump(), "seed": P.seed, "rows": 1},
        lambda: evaluate_suite(base, tok, suite, ev, P.seed, rows=True))
    rows = [{"set": "base", "objective": "-", "seed": -1, **r} for r in base_ev.pop("rows")]
    plots_tmp = fresh_tmp_dir(plots_dir)
    runs = [(name, o, s) for name in dsets for o in ac.objectives for s in ac.seeds]
    cohort = train_cohort(base, tok, base_digest, dsets, runs, cfg, suite, ev, P.seed,
                          run_prefix=f"adaptation-{family}", ckpt_root=ckpt_root, plots_dir=plots_tmp,
                          log=f"adaptation {family}")
    rows += cohort.rows
    df = pd.DataFrame(rows)
    scores = problem_scores(df)
    x = [drift[n]["ppl"] for n in names]
    sweep: dict = {"sets": {n: {"ppl": drift[n]["ppl"], **{f"ppl_{q.lower()}": drift[n]["quarters"][q]["ppl"]
                                                           for q in drift[n]["quarters"]},
                                "mean_tokens": float(np.mean([len(s.split()) for s in dsets[n]["solution"]]))}
                            for n in dsets},
                   "ppl_last_minus_first": ppl_moved, "steps": cfg.steps,
                   "base": {"avg": base_ev["avg_at_k"], **{t: base_ev[t]["avg_at_k"] for t in ev.tiers}},
                   "students": aggregate_students(cohort.records, ev.tiers), "verdicts": {}}
    for o in ac.objectives:
        for u in UTILITIES:
            mats = [score_matrix(scores, n, o, u) for n in names]
            v = sweep_verdict(x, mats, ppl_moved, n_boot=ac.n_boot, seed=P.seed)
            per_level = [float(m.mean()) for m in mats]
            # secondary readings of "drift" (not the claim's): the first quarter's perplexity, before the model can
            # adapt to a trace's style in context, and the dial's level itself
            axes = {"ppl_q1": [drift[n]["quarters"]["Q1"]["ppl"] for n in names], "level": list(ac.levels)}
            entry = {**v, "per_level": per_level,
                     "other_axes": {a: rank_trend(xa, mats, n_boot=ac.n_boot, seed=P.seed) for a, xa in axes.items()}}
            if ac.order_axis:
                oname = next(n for n in dsets if n not in names)
                entry["order_minus_level0"] = paired_diff(score_matrix(scores, oname, o, u), mats[0], n_boot=ac.n_boot,
                                                          seed=P.seed)
            sweep["verdicts"].setdefault(o, {})[u] = entry
    res["sweep"] = sweep
    tmp = fresh_tmp_dir(out)
    write_json(tmp / "adaptation.json", {**res, "records": cohort.records})
    df.to_parquet(tmp / "per_problem.parquet", index=False)
    replace_dir(tmp, out)
    replace_dir(plots_tmp, plots_dir)
    verdicts = {o: {u: {"verdict": e["verdict"], "spearman": e["spearman"]["rho"], "spearman_ci95": e["spearman"]["ci95"],
                        "last_minus_first": e["last_minus_first"]["mean"],
                        "last_minus_first_ci95": e["last_minus_first"]["ci95"], "per_level": e["per_level"],
                        **{f"spearman_vs_{a}": t["rho"] for a, t in e["other_axes"].items()},
                        **{f"spearman_vs_{a}_ci95": t["ci95"] for a, t in e["other_axes"].items()}}
                    for u, e in by_u.items()} for o, by_u in sweep["verdicts"].items()}
    return {"family": family, "n_ids": len(pids), "steps": cfg.steps,
            "sets": {n: {k: v for k, v in d.items() if k != "token_shift"} for n, d in res["sets"].items()},
            "ppl_same_rank_in_every_quarter": res["quarter_ranking"]["same_in_every_quarter"] if ppl else None,
            "q1_word_loss_share": {n: a["quarter"]["by_class"]["word"]["loss_share"] for n, a in attribution.items()},
            "q1_notation_loss_share": {n: a["quarter"]["by_class"]["notation"]["loss_share"] for n, a in attribution.items()},
            "logic_all_valid": min(v["all_valid"] for v in res["logic"].values()),
            "logic_same_atoms": min(v["same_atoms"] for v in res["logic"].values()),
            "drift_ppl": {n: drift[n]["ppl"] for n in dsets}, "ppl_last_minus_first": ppl_moved["mean"],
            "ppl_last_minus_first_ci95": ppl_moved["ci95"], "base_avg": base_ev["avg_at_k"],
            "drift_utility": verdicts,
            "drift_utility_spearman": {o: {"rho": by_u["acc"]["spearman"], "ci95": by_u["acc"]["spearman_ci95"]}
                                       for o, by_u in verdicts.items()},
            "wall_s": time.perf_counter() - t0}
