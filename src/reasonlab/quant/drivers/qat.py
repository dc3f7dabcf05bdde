"""Stage ``quant_qat@<reasoner>-<bits>``: every QAT run of one bit width, exported, reloaded and evaluated.

Each QAT run is a :class:`~reasonlab.checkpoint.Run` under ``.ckpt/`` keyed by everything that
determines its weights (FP model, traces, PTQ checkpoint, scheme, training params, loss, seed, probe)
and the code; a killed stage resumes in the run it was in, finished runs are reused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_text
from ...models.train import train
from ...models.zoo import load_lm
from ..config import QuantParams as Params
from ...world.tasks import open_task
from ..export import export_qat
from ..packed import check_reload, dequantized_copy, dir_size_bytes, weights_bytes
from ..qat import ProbeCurve, qat_loss, qat_student
from ..qparams import load_quantized
from ..runs import qat_runs
from ..scheme import scheme_for
from ..traces import load_traces, trace_examples
from . import QUANT_THREADS


def run_qat_grid(P: Params, reasoner: str, bits: int, model_dir: str | Path, world_dir: str | Path,
                 traces_path: str | Path, ptq_dir: str | Path, out_dir: str | Path, plots_dir: str | Path,
                 ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``quant_qat``: every QAT run of (``reasoner``, ``bits``).

    Writes the exported checkpoints to ``out_dir/<run>/`` and, per run, the training curves (dvclive's
    ``loss.tsv``, ``lr.tsv``, ``grad_norm.tsv``) plus ``probe.tsv`` (step, probe accuracy, step 0
    included) to ``plots_dir/<run>/``.
    """
    setup_threads(QUANT_THREADS)
    qc = P.quant
    qc.check_stage(reasoner, bits)
    task = open_task(world_dir)
    fp, tok = load_lm(model_dir)
    fp.requires_grad_(False)
    traces = load_traces(traces_path)
    examples = trace_examples(tok, traces)
    suite = eval_suite(task, qc.eval)
    probe_items = [it for t in qc.qat.probe.tiers for it in task.tier_items(t, qc.qat.probe.n_problems)]
    scheme = scheme_for(qc, bits)
    cfg = qc.qat.train.resolve(len(examples))
    base_spec = {"reasoner": reasoner, "model": digest(model_dir), "traces": digest(traces_path),
                 "scheme": scheme.to_dict(), "train": cfg.model_dump(), "learnable_scales": qc.qat.learnable_scales,
                 "eval_every": qc.qat.eval_every, "probe": qc.qat.probe.model_dump()}
    eval_spec = {"eval": qc.eval.model_dump(), "seed": P.seed}
    check_text = f"{traces[0]['prompt']} {traces[0]['text']}"
    out_tmp, plots_tmp = fresh_tmp_dir(out_dir), fresh_tmp_dir(plots_dir)
    runs: dict[str, dict] = {}
    for r in qat_runs(qc, reasoner, bits):
        ptq_path = None if r.init == "fp" else Path(ptq_dir) / f"{r.init}-w{bits}"
        if ptq_path is not None and not (ptq_path / "config.json").exists():
            raise FileNotFoundError(f"PTQ init {ptq_path} not found (run quant_ptq@{reasoner} first)")
        run = Run(f"quant-qat-{reasoner}-w{bits}-{r.name}", {
            **base_spec, "objective": r.objective, "init": r.init, "seed": r.seed,
            "kd": qc.qat.kd.model_dump() if r.objective == "kd" else None,
            "ptq": digest(ptq_path) if ptq_path else None}, ckpt_root)
        desc = f"qat {reasoner} w{bits} {r.name}"
        student = qat_student(fp, scheme, ptq_path, qc.qat.learnable_scales)
        curve = ProbeCurve(run.dir / "probe.tsv", fp, tok, probe_items, qc.qat.probe, P.seed)
        if 0 not in curve.points:
            curve(0, student)
        stats = run.train(student, lambda ck: train(
            student, examples, cfg, pad_id=tok.pad_token_id, seed=r.seed, ckpt_dir=ck, live_dir=ck / "live",
            loss_fn=qat_loss(qc, r.objective), teacher=fp if r.objective == "kd" else None, on_log=curve,
            eval_every=qc.qat.eval_every, desc=desc), desc)
        student.eval()
        path = export_qat(student, tok, scheme, out_tmp / r.name, metadata={
            "reasoner": reasoner, "objective": r.objective, "init": r.init, "seed": r.seed, "qat": qc.qat.model_dump(),
            "key": run.key})
        plain = dequantized_copy(fp, load_quantized(path))
        diff = check_reload(student, plain, tok, check_text, f"{desc} export")
        ev = run.cached("eval", eval_spec, lambda: evaluate_suite(plain, tok, suite, qc.eval, P.seed))
        run_plots = plots_tmp / r.name
        run_plots.mkdir(parents=True, exist_ok=True)
        for tsv in sorted((run.dir / "live" / "plots" / "metrics").glob("*.tsv")):  # dvclive: loss, lr, grad_norm
            if tsv.stem != "probe_acc":  # probe.tsv below also has step 0
                shutil.copy2(tsv, run_plots / tsv.name)
        write_text(run_plots / "probe.tsv", curve.path.read_text())
        runs[r.name] = {
            "objective": r.objective, "init": r.init, "seed": r.seed, "rq1": r.rq1, "rq2": r.rq2,
            **ev, "size_bytes": dir_size_bytes(path), "weights_bytes": weights_bytes(path),
            "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"),
            "probe_init": curve.first, "probe_final": curve.last, "export_max_logit_diff": diff,
        }
        print(f"[{desc}] avg@{qc.eval.k}={ev['avg_at_k']:.3f} probe {curve.first:.3f} -> {curve.last:.3f}")
    replace_dir(out_tmp, out_dir)
    replace_dir(plots_tmp, plots_dir)
    return {"reasoner": reasoner, "bits": int(bits), "k": qc.eval.k, "steps": cfg.steps, "init": qc.qat.init,
            "fp_weights_bytes": weights_bytes(model_dir), "runs": runs}
