"""Stage ``quant_ptq@<reasoner>``: the FP reference and every PTQ model (method x bits), packed and evaluated."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from ...evaluate import eval_suite, evaluate_suite
from ...io import fresh_tmp_dir, replace_dir, setup_threads
from ...models.zoo import load_lm
from ..config import QuantParams as Params
from ...world.tasks import open_task
from ..calib import calibration_texts
from ..packed import check_reload, dequantized_copy, dir_size_bytes, weights_bytes
from ..ptq import run_ptq, save_quantized
from ..qparams import load_quantized
from ..scheme import scheme_for
from ..traces import load_traces
from . import QUANT_THREADS


def run_ptq_grid(P: Params, reasoner: str, model_dir: str | Path, world_dir: str | Path, traces_path: str | Path,
                 out_dir: str | Path) -> dict:
    """Stage ``quant_ptq``: evaluate the FP reasoner and every PTQ model (``methods`` x ``bits``), each
    written to ``out_dir/<method>-w<bits>/`` as a pack-quantized checkpoint."""
    setup_threads(QUANT_THREADS)
    qc = P.quant
    qc.check_stage(reasoner)
    task = open_task(world_dir)
    fp, tok = load_lm(model_dir)
    calib = calibration_texts(qc.calib, task, load_traces(traces_path), tok.eos_token)
    suite = eval_suite(task, qc.eval)
    t0 = time.perf_counter()
    models: dict[str, dict] = {"fp": {"method": "fp", "bits": 32, **evaluate_suite(fp, tok, suite, qc.eval, P.seed),
                                      "size_bytes": dir_size_bytes(model_dir), "weights_bytes": weights_bytes(model_dir),
                                      "eval_s": time.perf_counter() - t0}}
    tmp = fresh_tmp_dir(out_dir)
    for bits in qc.bits:
        scheme = scheme_for(qc, bits)
        for method in qc.methods:
            name = f"{method}-w{bits}"
            t0 = time.perf_counter()
            qmodel = run_ptq(copy.deepcopy(fp), tok, method, scheme, calib, qc.calib.max_len, seed=P.seed)
            ptq_s = time.perf_counter() - t0
            path = save_quantized(qmodel, tok, tmp / name, metadata={
                "reasoner": reasoner, "method": method, "scheme": scheme.to_dict(), "calib": qc.calib.model_dump(),
                "seed": P.seed})
            plain = dequantized_copy(fp, load_quantized(path))
            diff = check_reload(qmodel, plain, tok, calib[0], f"{reasoner} {name}")
            t0 = time.perf_counter()
            ev = evaluate_suite(plain, tok, suite, qc.eval, P.seed)
            models[name] = {"method": method, "bits": bits, **ev, "size_bytes": dir_size_bytes(path),
                            "weights_bytes": weights_bytes(path), "ptq_s": ptq_s, "eval_s": time.perf_counter() - t0,
                            "reload_max_logit_diff": diff}
            print(f"[quant_ptq {reasoner}] {name}: avg@{qc.eval.k}={ev['avg_at_k']:.3f} (fp {models['fp']['avg_at_k']:.3f})")
    replace_dir(tmp, out_dir)
    return {"reasoner": reasoner, "k": qc.eval.k, "scheme": {"group_size": qc.group_size, "symmetric": qc.symmetric},
            "calib": qc.calib.domain, "models": models}
