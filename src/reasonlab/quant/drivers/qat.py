"""Stage ``quant_qat@<reasoner>-<bits>``: every QAT run of one bit width, exported, reloaded and evaluated,
with the FP controls of RQ1 and its paired statistics.

Each QAT run (and each FP control) is a :class:`~reasonlab.checkpoint.Run` under ``.ckpt/`` keyed by everything
that determines its weights (FP model, traces and source, PTQ checkpoint, scheme, training params, loss, seed,
probe) and the code; a killed stage resumes in the run it was in, finished runs are reused. An FP control does
not depend on the bit width: the first stage of a reasoner trains it, the others reuse it.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_text
from ...models.train import train
from ...models.zoo import load_lm
from ..config import QuantParams as Params
from ...world.tasks import open_task
from ..export import export_qat
from ..packed import check_reload, dequantized_copy, dir_size_bytes, weights_bytes
from ..calib_align import ProblemCurve, probe_items, probe_scores
from ..qat import qat_loss, qat_student
from ..qparams import load_quantized
from ..rq1 import problem_keys, problem_shares, rq1_statistics
from ..rq2 import rq2_statistics
from ..runs import control_runs, qat_runs
from ..scheme import scheme_for
from ..traces import load_traces, source_traces, trace_examples, trace_items
from . import QUANT_THREADS


def _scored(run: Run, name: str, spec: dict, model, tok, suite, ev, seed: int) -> dict:
    """``model``'s compact metrics on ``suite`` and its per-problem shares (``per_problem``), cached in ``run``."""
    def go() -> dict:
        res = evaluate_suite(model, tok, suite, ev, seed, rows=True)
        return {**{k: v for k, v in res.items() if k != "rows"}, "per_problem": problem_shares(res["rows"], suite)}
    return run.cached(name, spec, go)


def run_qat_grid(P: Params, reasoner: str, bits: int, model_dir: str | Path, world_dir: str | Path,
                 traces_path: str | Path, ptq_dir: str | Path, out_dir: str | Path, plots_dir: str | Path,
                 ckpt_root: str | Path = CKPT_ROOT, per_problem_path: str | Path | None = None) -> dict:
    """Stage ``quant_qat``: every QAT run of (``reasoner``, ``bits``), the FP controls and RQ1's statistics.

    Writes the exported checkpoints to ``out_dir/<run>/`` and, per run, the training curves (dvclive's
    ``loss.tsv``, ``lr.tsv``, ``grad_norm.tsv``) plus, for the RQ2 runs, ``probe.tsv`` (step, probe accuracy,
    step 0 included) to ``plots_dir/<run>/``; with ``per_problem_path``, every model's share of correct samples
    per test problem (FP, the QAT init, each run, each control) as JSON, so every difference can be recomputed.
    """
    setup_threads(QUANT_THREADS)
    qc = P.quant
    qc.check_stage(reasoner, bits)
    task = open_task(world_dir)
    fp, tok = load_lm(model_dir)
    fp.requires_grad_(False)
    traces = load_traces(traces_path)
    sources = list(qc.qat.sources)
    pool, _ = trace_items(task, qc.traces.n_problems, qc.traces.seed)
    by_pid = {it.pid: it for it in pool}
    data = {src: traces if src == "self" else source_traces(task, traces, by_pid, src, qc.qat.oracle_dialect)
            for src in sources}
    examples = {src: trace_examples(tok, d) for src, d in data.items()}
    suite = eval_suite(task, qc.eval)
    probe, probe_split = probe_items(task, qc.qat.probe.n_problems, set(by_pid))
    probe_spec = {"probe": qc.qat.probe.model_dump(), "items": [it.pid for it in probe], "seed": P.seed}
    scheme = scheme_for(qc, bits)
    cfg = qc.qat.train.resolve(len(examples["self"]))
    source_spec = lambda src: None if src == "self" else {
        "source": src, **({"dialect": qc.qat.oracle_dialect} if src == "oracle" else {})}
    data_spec = {"reasoner": reasoner, "model": digest(model_dir), "traces": digest(traces_path),
                 "train": cfg.model_dump()}
    base_spec = {**data_spec, "scheme": scheme.to_dict(), "learnable_scales": qc.qat.learnable_scales,
                 "eval_every": qc.qat.eval_every, "probe": probe_spec}
    eval_spec = {"eval": qc.eval.model_dump(), "seed": P.seed}
    check_text = f"{traces[0]['prompt']} {traces[0]['text']}"
    out_tmp, plots_tmp = fresh_tmp_dir(out_dir), fresh_tmp_dir(plots_dir)

    # the references every QAT run is paired with: the FP model and the QAT init (PTQ alone, step 0)
    fp_run = Run(f"quant-fp-{reasoner}", {"model": digest(model_dir)}, ckpt_root)
    fp_scores = _scored(fp_run, "eval-rows", eval_spec, fp, tok, suite, qc.eval, P.seed)
    probe_of = lambda run, model: np.asarray(run.cached("probe", probe_spec, lambda: probe_scores(
        model, tok, probe, qc.qat.probe, P.seed).tolist()))
    rq2_here = any(r.rq2 for r in qat_runs(qc, reasoner, bits))
    fp_probe = probe_of(fp_run, fp) if rq2_here else None
    control_probe = {"kd": fp_probe, "sft": fp_probe} if rq2_here else {}
    init_path = None if qc.qat.init == "fp" else Path(ptq_dir) / f"{qc.qat.init}-w{bits}"
    if init_path is not None and not (init_path / "config.json").exists():
        raise FileNotFoundError(f"PTQ init {init_path} not found (run quant_ptq@{reasoner} first)")
    init_run = Run(f"quant-init-{reasoner}-w{bits}-{qc.qat.init}", {
        "model": digest(model_dir), "scheme": scheme.to_dict(), "ptq": digest(init_path) if init_path else None},
        ckpt_root)
    init_model = dequantized_copy(fp, qat_student(fp, scheme, init_path, qc.qat.learnable_scales))
    init_scores = _scored(init_run, "eval-rows", eval_spec, init_model, tok, suite, qc.eval, P.seed)

    controls: dict[str, dict] = {}
    ctl_probes: list[np.ndarray] = []
    for c in control_runs(qc):
        run = Run(f"quant-control-{reasoner}-{c.name}", {**data_spec, "objective": c.objective, "seed": c.seed,
                                                           "data": source_spec(c.source)}, ckpt_root)
        desc = f"fp control {reasoner} {c.name}"
        student = copy.deepcopy(fp).requires_grad_(True)
        stats = run.train(student, lambda ck: train(
            student, examples[c.source], cfg, pad_id=tok.pad_token_id, seed=c.seed, ckpt_dir=ck,
            live_dir=ck / "live", loss_fn=qat_loss(qc, c.objective), desc=desc), desc)
        student.eval()
        ev = _scored(run, "eval-rows", eval_spec, student, tok, suite, qc.eval, P.seed)
        controls[c.name] = {"objective": c.objective, "source": c.source, "seed": c.seed, **ev,
                            "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s")}
        if rq2_here and c.source == "self":  # RQ2's SFT runs train on the own traces: their control's probe
            controls[c.name]["probe"] = float(probe_of(run, student).mean())
            ctl_probes.append(probe_of(run, student))
        print(f"[{desc}] avg@{qc.eval.k}={ev['avg_at_k']:.3f}")
    if ctl_probes:
        control_probe["sft"] = np.mean(ctl_probes, axis=0)  # the controls' mean over seeds, per problem

    runs: dict[str, dict] = {}
    curves: dict[str, dict[str, list]] = {}  # RQ2: objective -> init -> per seed [steps, problems]
    finals: dict[str, dict[str, list]] = {}
    probe_steps: list[int] = []
    probe_runs: dict[str, list] = {}
    for r in qat_runs(qc, reasoner, bits):
        ptq_path = None if r.init == "fp" else Path(ptq_dir) / f"{r.init}-w{bits}"
        if ptq_path is not None and not (ptq_path / "config.json").exists():
            raise FileNotFoundError(f"PTQ init {ptq_path} not found (run quant_ptq@{reasoner} first)")
        run = Run(f"quant-qat-{reasoner}-w{bits}-{r.name}", {
            **base_spec, "objective": r.objective, "init": r.init, "seed": r.seed, "data": source_spec(r.source),
            "probed": r.rq2, "kd": qc.qat.kd.model_dump() if r.objective == "kd" else None,
            "ptq": digest(ptq_path) if ptq_path else None}, ckpt_root)
        desc = f"qat {reasoner} w{bits} {r.name}"
        student = qat_student(fp, scheme, ptq_path, qc.qat.learnable_scales)
        curve = None
        if r.rq2:  # the accuracy-vs-step curve is RQ2's measurement; RQ1 reads the final model only
            curve = ProblemCurve(run.dir / "probe.json", fp, tok, probe, qc.qat.probe, P.seed)
            if 0 not in curve.points:
                curve(0, student)
        stats = run.train(student, lambda ck: train(
            student, examples[r.source], cfg, pad_id=tok.pad_token_id, seed=r.seed, ckpt_dir=ck,
            live_dir=ck / "live", loss_fn=qat_loss(qc, r.objective), teacher=fp if r.objective == "kd" else None,
            on_log=curve, eval_every=qc.qat.eval_every if curve else None, desc=desc), desc)
        student.eval()
        path = export_qat(student, tok, scheme, out_tmp / r.name, metadata={
            "reasoner": reasoner, "objective": r.objective, "init": r.init, "seed": r.seed, "source": r.source,
            "qat": qc.qat.model_dump(), "key": run.key})
        plain = dequantized_copy(fp, load_quantized(path))
        diff = check_reload(student, plain, tok, check_text, f"{desc} export")
        ev = _scored(run, "eval-rows", eval_spec, plain, tok, suite, qc.eval, P.seed)
        run_plots = plots_tmp / r.name
        run_plots.mkdir(parents=True, exist_ok=True)
        for tsv in sorted((run.dir / "live" / "plots" / "metrics").glob("*.tsv")):  # dvclive: loss, lr, grad_norm
            if tsv.stem != "probe_acc":  # probe.tsv below also has step 0
                shutil.copy2(tsv, run_plots / tsv.name)
        if curve is not None:
            write_text(run_plots / "probe.tsv", curve.tsv())
            curves.setdefault(r.objective, {}).setdefault(r.init, []).append(curve.matrix())
            finals.setdefault(r.objective, {}).setdefault(r.init, []).append(np.asarray(ev["per_problem"]))
            probe_steps = curve.steps()
            probe_runs[r.name] = curve.matrix().tolist()
        first, last = (curve.matrix().mean(axis=1)[[0, -1]] if curve else (None, None))
        runs[r.name] = {
            "objective": r.objective, "init": r.init, "seed": r.seed, "source": r.source, "rq1": r.rq1, "rq2": r.rq2,
            **ev, "size_bytes": dir_size_bytes(path), "weights_bytes": weights_bytes(path),
            "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"),
            "probe_init": None if first is None else float(first), "probe_final": None if last is None else float(last),
            "export_max_logit_diff": diff,
        }
        shown = f" probe {first:.3f} -> {last:.3f}" if curve else ""
        print(f"[{desc}] avg@{qc.eval.k}={ev['avg_at_k']:.3f}{shown}")
    replace_dir(out_tmp, out_dir)
    replace_dir(plots_tmp, plots_dir)

    per_problem = {"problems": problem_keys(suite), "fp": fp_scores["per_problem"],
                   "init": init_scores.pop("per_problem"),
                   "runs": {n: m.pop("per_problem") for n, m in runs.items()},
                   "controls": {n: m.pop("per_problem") for n, m in controls.items()},
                   "probe": {"problems": [f"{probe_split}:{it.pid}" for it in probe], "steps": probe_steps,
                             "control": {o: np.asarray(v).tolist() for o, v in control_probe.items()},
                             "runs": probe_runs}}
    fp_scores.pop("per_problem")
    if per_problem_path is not None:
        write_text(per_problem_path, json.dumps(per_problem))
    rq1 = rq1_statistics(per_problem["fp"], per_problem["init"],
                         [{**runs[n], "per_problem": v} for n, v in per_problem["runs"].items() if runs[n]["rq1"]],
                         [{**controls[n], "per_problem": v} for n, v in per_problem["controls"].items()])
    rq2 = None
    if curves:
        rq2 = rq2_statistics(probe_steps, {o: {i: np.stack(v) for i, v in d.items()} for o, d in curves.items()},
                             {o: {i: np.stack(v) for i, v in d.items()} for o, d in finals.items()}, control_probe,
                             qc.qat.target, qc.qat.ablation.baseline)
        rq2.update(probe_split=probe_split, probe_problems=len(probe))
    return {"reasoner": reasoner, "bits": int(bits), "k": qc.eval.k, "steps": cfg.steps, "init": qc.qat.init,
            "sources": sources, "fp_weights_bytes": weights_bytes(model_dir), "fp": fp_scores,
            "init_model": init_scores,
            "runs": runs, "controls": controls, "rq1_sources": rq1, "rq2": rq2}
