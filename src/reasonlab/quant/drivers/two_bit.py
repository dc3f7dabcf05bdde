"""Stage ``quant_w2@<reasoner>``: low-bit recovery from the ``quant_qat@<reasoner>-<bits>`` results (``bits`` is
``quant.two_bit.bits``, 2 by default), and the shipped low-bit checkpoint checked in a fresh process.

Nothing trains here. The stage reads every model's per-problem test results at that width (FP, its FP controls,
the PTQ init, the QAT runs; one sampling seed, common random numbers), with the QAT recipe fixed in
``quant.two_bit`` *before* looking at results (objective, source; the init is ``quant.qat.init``), and writes:

* per tier: FP, FP control, RTN / GPTQ / AWQ (the PTQ stage's Avg@k), QAT-SFT and QAT-KD of the recipe's source;
* the share of FP accuracy PTQ and QAT keep, and the recovered fraction ``(QAT - PTQ) / (control - PTQ)`` of each
  objective (:mod:`reasonlab.quant.two_bit`), paired over problems and seeds;
* the packed checkpoint of the recipe's first seed: its bytes by kind (packed linear weights with their scales
  and zero points, full-precision embeddings and ``lm_head``, norms), the size it would have with the embeddings
  quantized the same way, and a greedy-decoding parity check: stock ``transformers`` in a fresh Python process
  (``AutoModelForCausalLM.from_pretrained``, nothing of this package) must generate the same tokens as the
  in-process dequantized copy of the same checkpoint on fixed validation prompts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...io import setup_threads, write_text
from ...models.zoo import load_lm
from ...world.tasks import open_task
from ..calib_align import probe_items
from ..config import QuantParams as Params
from ..packed import dequantized_copy, weights_bytes
from ..qparams import load_quantized
from ..two_bit import kept_share, recovered_fraction
from . import QUANT_THREADS

PARITY_PROMPTS = 4
PARITY_TOKENS = 32

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_QUANT_PARTS = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx")

#: The fresh process's whole program: stock transformers loads the packed checkpoint and decodes greedily.
_STOCK_GREEDY = """
import json, sys, torch
from transformers import AutoModelForCausalLM
path, prompts, n, pad = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = AutoModelForCausalLM.from_pretrained(path).eval()
out = []
with torch.no_grad():
    for ids in prompts:
        x = torch.tensor([ids])
        y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n, min_new_tokens=n,
                           pad_token_id=pad)
        out.append(y[0, len(ids):].tolist())
print(json.dumps(out))
"""


def greedy_tokens(model, prompts: Sequence[Sequence[int]], n: int, pad_id: int) -> list[list[int]]:
    """``n`` greedily decoded tokens after each prompt (token ids), with ``generate`` exactly as the fresh process
    calls it (``min_new_tokens=n``: no early end of sequence, so both sides decode the same length)."""
    out = []
    model.eval()
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([list(ids)])
            y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n,
                               min_new_tokens=n, pad_token_id=pad_id)
            out.append(y[0, len(ids):].tolist())
    return out


def stock_greedy_tokens(path: str | Path, prompts: Sequence[Sequence[int]], n: int, pad_id: int) -> list[list[int]]:
    """:func:`greedy_tokens` of the checkpoint at ``path`` loaded by stock ``transformers`` in a fresh process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = [str(Path(path).resolve()), json.dumps([list(p) for p in prompts]), str(n), str(pad_id)]
    res = subprocess.run([sys.executable, "-c", _STOCK_GREEDY, *args], capture_output=True, text=True, env=env,
                         cwd=tempfile.gettempdir())
    if res.returncode != 0:
        raise RuntimeError(f"stock transformers could not load or run {path}:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def size_breakdown(path: str | Path, bits: int) -> dict:
    """Bytes of a packed checkpoint's tensors by kind, from the safetensors headers: ``quantized`` (packed weights,
    scales, zero points of the quantized linears, and ``quantized_params``, their unpacked parameter count),
    ``embeddings`` (``embed_tokens`` and ``lm_head``, kept full precision, and ``embedding_params``), ``other``
    (norms), ``header`` (the files' JSON headers: ``total`` plus it is the files' size);
    ``with_embeddings_quantized`` the total if the embeddings cost what a quantized weight costs here
    (bytes per parameter of the quantized linears, scales included)."""
    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no .safetensors file")
    b = {"quantized": 0, "embeddings": 0, "other": 0, "quantized_params": 0, "embedding_params": 0, "header": 0}
    for f in files:
        with open(f, "rb") as fh:  # safetensors: an 8-byte little-endian length, a JSON header, then the data
            b["header"] += 8 + int.from_bytes(fh.read(8), "little")
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                sl = st.get_slice(name)
                numel = math.prod(sl.get_shape())
                nbytes = numel * _DTYPE_BYTES[sl.get_dtype()]
                if name.rsplit(".", 1)[-1] in _QUANT_PARTS:
                    b["quantized"] += nbytes
                    if name.endswith("weight_shape"):
                        b["quantized_params"] += int(math.prod(st.get_tensor(name).tolist()))
                elif "embed_tokens" in name or name.startswith("lm_head"):
                    b["embeddings"] += nbytes
                    b["embedding_params"] += numel
                else:
                    b["other"] += nbytes
    per_param = b["quantized"] / b["quantized_params"] if b["quantized_params"] else float("nan")
    total = b["quantized"] + b["embeddings"] + b["other"]  # tensor data only
    return {**b, "total": total, "bits": bits, "bytes_per_quantized_param": per_param,
            "with_embeddings_quantized": b["quantized"] + b["other"] + b["embedding_params"] * per_param + b["header"]}


def _recipe_runs(runs: Mapping[str, Mapping[str, Any]], objective: str, init: str, source: str) -> list[str]:
    names = [n for n, r in runs.items() if r["objective"] == objective and r["init"] == init
             and r.get("source", "self") == source and r.get("rq1", True)]
    return sorted(names, key=lambda n: int(runs[n]["seed"]))


def run_two_bit(P: Params, reasoner: str, model_dir: str | Path, world_dir: str | Path, qat_metrics: str | Path,
                per_problem: str | Path, ptq_metrics: str | Path, qat_dir: str | Path, out_data: str | Path) -> dict:
    """Stage ``quant_w2``: the statistics above for ``reasoner`` at ``quant.two_bit.bits``; writes the per-problem
    scores it used to ``out_data`` (JSON) and returns the metrics. The QAT inputs must be that width's."""
    setup_threads(QUANT_THREADS)
    qc = P.quant
    BITS, objective, source = qc.two_bit.bits, qc.two_bit.objective, qc.two_bit.source  # checked by QuantConfig
    qc.check_stage(reasoner, BITS)
    meta = json.loads(Path(qat_metrics).read_text())
    if meta.get("bits") != BITS:
        raise ValueError(f"{qat_metrics}: QAT results at {meta.get('bits')} bits, but quant.two_bit.bits={BITS}")
    pp = json.loads(Path(per_problem).read_text())
    ptq = json.loads(Path(ptq_metrics).read_text())
    init = meta["init"]
    problems = list(pp["problems"])
    fp, init_v = np.asarray(pp["fp"], float), np.asarray(pp["init"], float)
    runs = {}
    for obj in qc.qat.objectives:
        names = _recipe_runs(meta["runs"], obj, init, source)
        if names:
            runs[obj] = {"names": names, "seeds": [int(meta["runs"][n]["seed"]) for n in names],
                         "scores": np.asarray([pp["runs"][n] for n in names], float)}
    if objective not in runs:
        raise ValueError(f"{qat_metrics}: no QAT run with objective {objective}, init {init}, source {source}")
    ctl_names = sorted((n for n, c in meta["controls"].items() if c["source"] == source and c["objective"] == "sft"),
                       key=lambda n: int(meta["controls"][n]["seed"]))
    control = np.asarray([pp["controls"][n] for n in ctl_names], float) if ctl_names else None

    # the table: per tier, points
    tiers = list(dict.fromkeys(p.split(":", 1)[0] for p in problems))
    cols = {t: np.array([p.split(":", 1)[0] == t for p in problems]) for t in tiers}
    ptq_models = {m: ptq["models"].get(f"{m}-w{BITS}") for m in qc.methods}
    table = []

    def row(name: str, scores: np.ndarray | None = None, agg: Mapping[str, Any] | None = None, n: int = 1) -> None:
        r: dict[str, Any] = {"model": name, "n": n}
        for t in tiers:
            r[t] = (100 * float(np.atleast_2d(scores)[:, cols[t]].mean()) if scores is not None
                    else 100 * float((agg or {}).get(t, {}).get("avg_at_k", float("nan"))))
        r["mean"] = float(np.mean([r[t] for t in tiers]))
        table.append(r)

    row("FP", fp)
    if control is not None:
        row(f"FP control (SFT, source {source})", control, n=len(control))
    for m, agg in ptq_models.items():
        if agg is not None:
            row(f"{m.upper()} W{BITS}", agg=agg)
    for obj, r in runs.items():
        row(f"QAT-{obj.upper()} W{BITS} (from {init.upper()}, source {source})", r["scores"], n=len(r["seeds"]))

    stats: dict[str, Any] = {"ptq_kept": kept_share(fp, init_v), "fp_control_kept": (
        kept_share(fp, control) if control is not None else None), "objectives": {}}
    for obj, r in runs.items():
        ref = fp if obj == "kd" or control is None else control
        stats["objectives"][obj] = {
            "reference": "FP model" if ref is fp else f"FP control (SFT, source {source})",
            "qat_kept": kept_share(fp, r["scores"]),
            "recovered": recovered_fraction(init_v, r["scores"], ref)}
    stats["recovered"] = stats["objectives"][objective]["recovered"]
    stats["qat_kept"] = stats["objectives"][objective]["qat_kept"]

    # the shipped checkpoint: the recipe's first seed
    ckpt = Path(qat_dir) / runs[objective]["names"][0]
    if not (ckpt / "config.json").exists():
        raise FileNotFoundError(f"{ckpt}: the QAT checkpoint is missing (run quant_qat@{reasoner}-{BITS} first)")
    fp_model, tok = load_lm(model_dir)
    task = open_task(world_dir)
    items, split = probe_items(task, PARITY_PROMPTS, set())
    prompts = [tok(it.prompt, add_special_tokens=False)["input_ids"] for it in items]
    mine = greedy_tokens(dequantized_copy(fp_model, load_quantized(ckpt)), prompts, PARITY_TOKENS, tok.pad_token_id)
    stock = stock_greedy_tokens(ckpt, prompts, PARITY_TOKENS, tok.pad_token_id)
    same = [a == b for a, b in zip(mine, stock)]
    sizes = size_breakdown(ckpt, BITS)
    fp_bytes, packed_bytes = weights_bytes(model_dir), weights_bytes(ckpt)
    checkpoint = {
        "path": str(ckpt), "run": runs[objective]["names"][0], "fp32_weights_bytes": fp_bytes,
        "packed_weights_bytes": packed_bytes, "sizes": sizes,
        "packed_over_fp32": packed_bytes / fp_bytes,
        "with_embeddings_quantized_over_fp32": sizes["with_embeddings_quantized"] / fp_bytes,
        "parity": {"prompts": len(prompts), "split": split, "tokens": PARITY_TOKENS, "identical": int(sum(same)),
                   "all_identical": all(same),
                   "first_mismatch": next((i for i, s in enumerate(same) if not s), None)},
    }
    write_text(out_data, json.dumps({
        "problems": problems, "fp": fp.tolist(), "ptq": init_v.tolist(),
        "qat": {obj: {"seeds": r["seeds"], "scores": r["scores"].tolist()} for obj, r in runs.items()},
        "control": None if control is None else control.tolist(),
        "parity": {"prompts": prompts, "in_process": mine, "stock_fresh_process": stock}}))
    return {"reasoner": reasoner, "bits": BITS, "group_size": qc.group_size, "k": meta.get("k"), "init": init, "objective": objective,
            "source": source, "fp_params": sum(p.numel() for p in fp_model.parameters()),
            "seeds": runs[objective]["seeds"], "table": table, **stats, "checkpoint": checkpoint}
