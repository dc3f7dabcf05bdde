"""Stage ``quant_calib@<reasoner>``: RQ4, calibration-domain alignment (PTQ per domain, QAT from each domain's PTQ).

1. One calibration set per domain (:func:`~reasonlab.quant.calib_align.calibration_sets`, all the same size).
2. PTQ (``calib_align.methods`` x ``calib_align.bits``) calibrated on each domain, evaluated on the test suite per
   problem; the aligned domain (``traces``) against each other domain, paired over problems. Precondition: PTQ
   calibrated on the other domain loses accuracy against FP (by more than 2 standard errors); else there is
   nothing a better calibration could win, and the claim is "not testable here".
3. QAT (``calib_align.objective``, ``quant.qat.train``) from each domain's ``qat_init`` PTQ model at ``qat_bits``,
   for every seed, probed per problem on the validation split every ``eval_every`` steps; steps to reach
   ``target`` x the FP control's probe accuracy; the area after step 0 and the final test accuracy, paired over
   problems and seeds. The FP control of the KD objective is the FP model itself (KD of a model to itself has a
   zero gradient); for SFT it would be a trained FP copy, which this stage does not make. Precondition: at
   least one of the two inits starts below the FP control by more than 2 standard errors. Beside the claims,
   ``rise_diff`` compares how far each curve rose above its own init: a faster convergence with an equal rise
   is the init's head start, not faster learning.

Each QAT run is a resumable :class:`~reasonlab.checkpoint.Run` keyed by what determines it.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_json, write_text
from ...models.train import train
from ...models.zoo import load_lm
from ...stats import paired_diff
from ...world.tasks import open_task
from ..calib_align import (Z, ProblemCurve, area_after_start, calibration_sets, claim, probe_items, probe_scores,
                           room, steps_to_target, suite_scores)
from ..config import QuantParams as Params
from ..packed import dequantized_copy
from ..ptq import run_ptq, save_quantized
from ..qat import qat_loss, qat_student
from ..qparams import load_quantized
from ..scheme import scheme_for
from ..traces import load_traces, trace_examples, trace_items
from . import QUANT_THREADS

def run_calib_align(P: Params, reasoner: str, model_dir: str | Path, world_dir: str | Path, traces_path: str | Path,
                    out_dir: str | Path, plots_dir: str | Path, ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``quant_calib``: writes ``out_dir/calib_sets.json`` (every calibration text and its source),
    ``out_dir/per_problem.parquet`` (every model's accuracy per problem, test suite and validation probe),
    ``out_dir/init/<method>-w<bits>-<domain>/`` (the QAT inits, packed), and per QAT run ``loss.tsv`` and
    ``probe.tsv`` under ``plots_dir/<domain>-s<seed>/``; returns the metrics."""
    setup_threads(QUANT_THREADS)
    qc = P.quant
    qc.check_stage(reasoner)
    ca = qc.calib_align
    task = open_task(world_dir)
    fp, tok = load_lm(model_dir)
    fp.requires_grad_(False)
    traces = load_traces(traces_path)
    pool, _ = trace_items(task, qc.traces.n_problems, qc.traces.seed)
    sets = calibration_sets(ca, task, traces, {it.pid: it for it in pool}, tok.eos_token)
    suite = eval_suite(task, qc.eval)
    probe, probe_split = probe_items(task, ca.probe.n_problems, {it.pid for it in pool})
    pids = [f"{t}:{it.pid}" for t, items in suite.items() for it in items]
    rows: list[dict] = []

    def keep(kind: str, scores: np.ndarray, ids: list[str], **cond) -> None:
        rows.extend({"kind": kind, **cond, "problem": p, "acc": float(a)} for p, a in zip(ids, scores))

    t_all = time.perf_counter()
    fp_ev, fp_test = suite_scores(fp, tok, suite, qc.eval, P.seed)
    fp_probe = probe_scores(fp, tok, probe, ca.probe, P.seed)
    probe_ids = [f"{probe_split}:{it.pid}" for it in probe]
    keep("test", fp_test, pids, model="fp")
    keep("probe", fp_probe, probe_ids, model="fp", step=0)
    tmp = fresh_tmp_dir(out_dir)
    plots_tmp = fresh_tmp_dir(plots_dir)
    write_json(tmp / "calib_sets.json", {d: {"digest": s.digest, "texts": s.texts, "sources": s.sources}
                                         for d, s in sets.items()})
    others = [d for d in ca.domains if d != "traces"]

    # ---- PTQ per domain
    ptq: dict[str, dict] = {}
    ptq_test: dict[tuple[str, int, str], np.ndarray] = {}
    with_inits = tmp / "init"
    for bits in ca.bits:
        scheme = scheme_for(qc, bits)
        for method in ca.methods:
            name = f"{method}-w{bits}"
            res: dict = {}
            for dom, cs in sets.items():
                t0 = time.perf_counter()
                qmodel = run_ptq(copy.deepcopy(fp), tok, method, scheme, cs.texts, ca.max_len, seed=P.seed)
                path = save_quantized(qmodel, tok, with_inits / f"{name}-{dom}", metadata={
                    "reasoner": reasoner, "method": method, "scheme": scheme.to_dict(), "calib_domain": dom,
                    "calib_digest": cs.digest, "n_calib": len(cs.texts), "seed": P.seed})
                plain = dequantized_copy(fp, load_quantized(path))
                ev, scores = suite_scores(plain, tok, suite, qc.eval, P.seed)
                ptq_test[(method, bits, dom)] = scores
                keep("test", scores, pids, model=f"{name}-{dom}", method=method, bits=bits, domain=dom)
                res[dom] = {**ev, "calib_digest": cs.digest, "s": time.perf_counter() - t0}
                if not (method == ca.qat_init and bits == ca.qat_bits):
                    shutil.rmtree(path)  # only the QAT inits are kept
                print(f"[quant_calib {reasoner}] {name} calibrated on {dom}: avg@{qc.eval.k}={ev['avg_at_k']:.3f} "
                      f"(fp {fp_ev['avg_at_k']:.3f})")
            claims = {}
            for dom in others:
                loss = room(fp_test, ptq_test[(method, bits, dom)], seed=P.seed)
                diff = paired_diff(ptq_test[(method, bits, "traces")], ptq_test[(method, bits, dom)], seed=P.seed)
                claims[dom] = {"fp_minus_other": loss, **claim(
                    diff, loss["met"], f"PTQ calibrated on {dom} loses {loss['mean']:+.3f} (se {loss['se']:.3f}) "
                                       f"against FP: nothing for a better calibration to win")}
            ptq[name] = {"domains": res, "aligned_vs": claims}

    # ---- QAT from each domain's PTQ init
    scheme = scheme_for(qc, ca.qat_bits)
    examples = trace_examples(tok, traces)
    cfg = qc.qat.train.resolve(len(examples))
    base_spec = {"reasoner": reasoner, "model": digest(model_dir), "traces": digest(traces_path),
                 "scheme": scheme.to_dict(), "train": cfg.model_dump(), "objective": ca.objective,
                 "kd": qc.qat.kd.model_dump() if ca.objective == "kd" else None, "eval_every": ca.eval_every,
                 "probe": ca.probe.model_dump(), "probe_items": [it.pid for it in probe]}
    eval_spec = {"eval": qc.eval.model_dump(), "seed": P.seed, "per_problem": 1}
    fp_target = ca.target * float(fp_probe.mean())
    curves: dict[str, dict[int, np.ndarray]] = {d: {} for d in ca.domains}  # domain -> seed -> [steps, problems]
    finals: dict[str, dict[int, np.ndarray]] = {d: {} for d in ca.domains}
    qat: dict[str, dict] = {}
    steps_seen: list[int] = []
    for dom in ca.domains:
        init_path = with_inits / f"{ca.qat_init}-w{ca.qat_bits}-{dom}"
        per_seed = {}
        for seed in ca.seeds:
            run = Run(f"quant-calib-{reasoner}-{dom}-s{seed}", {**base_spec, "init": digest(init_path), "seed": seed},
                      ckpt_root)
            desc = f"qat {reasoner} w{ca.qat_bits} calib={dom} s{seed}"
            student = qat_student(fp, scheme, init_path)
            curve = ProblemCurve(run.dir / "probe.json", fp, tok, probe, ca.probe, P.seed)
            if 0 not in curve.points:
                curve(0, student)
            stats = run.train(student, lambda ck: train(
                student, examples, cfg, pad_id=tok.pad_token_id, seed=seed, ckpt_dir=ck, live_dir=ck / "live",
                loss_fn=qat_loss(qc, ca.objective), teacher=fp if ca.objective == "kd" else None, on_log=curve,
                eval_every=ca.eval_every, desc=desc), desc)
            student.eval()
            plain = dequantized_copy(fp, student)
            res = run.cached("eval", eval_spec, lambda: (lambda e, s: {**e, "scores": s.tolist()})(
                *suite_scores(plain, tok, suite, qc.eval, P.seed)))
            finals[dom][seed] = np.asarray(res.pop("scores"))
            curves[dom][seed] = curve.matrix()
            steps_seen = curve.steps()
            keep("test", finals[dom][seed], pids, model=f"qat-{dom}", domain=dom, seed=seed)
            for s, v in zip(curve.steps(), curve.matrix()):
                keep("probe", v, probe_ids, model=f"qat-{dom}", domain=dom, seed=seed, step=s)
            run_plots = plots_tmp / f"{dom}-s{seed}"
            run_plots.mkdir(parents=True, exist_ok=True)
            loss_tsv = run.dir / "live" / "plots" / "metrics" / "loss.tsv"
            if loss_tsv.exists():
                shutil.copy2(loss_tsv, run_plots / "loss.tsv")
            write_text(run_plots / "probe.tsv", curve.tsv())
            acc = curve.matrix().mean(axis=1)
            per_seed[seed] = {"steps_to_target": steps_to_target(curve.steps(), acc, fp_target),
                              "probe_init": float(acc[0]), "probe_final": float(acc[-1]),
                              "area_after_start": float(area_after_start(curve.steps(), acc)),
                              "final_avg_at_k": res["avg_at_k"], "final_loss": stats.get("final_loss"),
                              "train_s": stats.get("wall_s")}
            print(f"[{desc}] probe {acc[0]:.3f} -> {acc[-1]:.3f} (target {fp_target:.3f}); "
                  f"test avg@{qc.eval.k}={res['avg_at_k']:.3f}")
        stt = [v["steps_to_target"] for v in per_seed.values()]
        qat[dom] = {"seeds": per_seed, "steps_to_target": stt,
                    "steps_to_target_mean": float(np.mean(stt)) if None not in stt else None,
                    "reached_share": float(np.mean([s is not None for s in stt])),
                    "probe_init": per_seed[ca.seeds[0]]["probe_init"],
                    "area_after_start": float(np.mean([v["area_after_start"] for v in per_seed.values()])),
                    "final_avg_at_k": float(np.mean([v["final_avg_at_k"] for v in per_seed.values()])),
                    "final_avg_at_k_sd": float(np.std([v["final_avg_at_k"] for v in per_seed.values()], ddof=1))
                    if len(per_seed) > 1 else 0.0}

    def stack(d: dict[int, np.ndarray]) -> np.ndarray:
        return np.stack([d[s] for s in ca.seeds])

    areas = {d: np.stack([area_after_start(steps_seen, curves[d][s]) for s in ca.seeds]) for d in ca.domains}
    inits = {d: curves[d][ca.seeds[0]][0] for d in ca.domains}  # step 0: the PTQ init, the same for every seed
    qat_claims: dict[str, dict] = {}
    for dom in others:
        gaps = {d: room(fp_probe, inits[d], seed=P.seed) for d in ("traces", dom)}
        ok = gaps["traces"]["met"] or gaps[dom]["met"]
        why = (f"neither init starts below the FP control by {Z:g} se on the validation probe (FP "
               f"{fp_probe.mean():.3f}; traces {inits['traces'].mean():.3f}, {dom} {inits[dom].mean():.3f})")
        qat_claims[dom] = {
            "room": gaps,
            # not a claim: how much each curve rose above its own init (area after 0 minus step 0); a faster
            # convergence with an equal rise is the init's head start, not faster learning
            "rise_diff": paired_diff(areas["traces"] - inits["traces"], areas[dom] - inits[dom], seed=P.seed),
            "converges_faster": claim(paired_diff(areas["traces"], areas[dom], seed=P.seed), ok, why),
            "ends_higher": claim(paired_diff(stack(finals["traces"]), stack(finals[dom]), seed=P.seed), ok, why),
        }
    keep_cols = ["kind", "model", "method", "bits", "domain", "seed", "step", "problem", "acc"]
    pd.DataFrame(rows).reindex(columns=keep_cols).to_parquet(tmp / "per_problem.parquet", index=False)
    replace_dir(tmp, out_dir)
    replace_dir(plots_tmp, plots_dir)
    return {"reasoner": reasoner, "k": qc.eval.k, "n_calib": len(next(iter(sets.values())).texts),
            "calib": {d: s.summary(tok) for d, s in sets.items()},
            "fp": {**fp_ev, "probe": float(fp_probe.mean())}, "target": ca.target, "target_acc": fp_target,
            "probe_split": probe_split, "probe_problems": len(probe),
            "ptq": ptq, "qat": {"bits": ca.qat_bits, "init": ca.qat_init, "objective": ca.objective,
                                "steps": cfg.steps, "probe_steps": steps_seen, "domains": qat, "aligned_vs": qat_claims},
            "wall_s": time.perf_counter() - t_all}
