"""The quantization pipeline of paper B (RQ1 objective, RQ2 initialisation, 2-bit recovery).

The stage scripts ``stages/quant_*.py`` are thin wrappers around the three steps here:

1. :func:`make_traces` (``quant_traces@<reasoner>``): the QAT training data. The
   full-precision reasoner samples ``traces.samples_per_problem`` solutions for a seeded
   subset of the training pool; complete, verified-correct ones are kept (at most
   ``traces.max_per_problem`` distinct ones per problem), as the paper's self-generated data.
2. :func:`run_ptq_grid` (``quant_ptq@<reasoner>``): the FP reference and every PTQ model
   (``methods`` x ``bits``, llm-compressor), each saved as a real packed checkpoint,
   reloaded, evaluated and measured on disk.
3. :func:`run_qat_grid` (``quant_qat@<reasoner>-<bits>``): the QAT runs of one bit width
   (:func:`qat_runs`: RQ1 objectives from ``qat.init`` x seeds; at ``qat.ablation.bits`` also
   RQ2 inits x objectives), each trained with the one training loop
   (:func:`reasonlab.models.train.train`, SFT = cross-entropy on the traces, KD = divergence
   to the FP reasoner's token distributions), probed for Avg@k on a few test problems every
   ``qat.eval_every`` steps (the accuracy-vs-step curve, step 0 included), exported with
   :func:`~reasonlab.quant.export.export_qat`, reloaded, evaluated and measured on disk.

Every model is evaluated the same way (``quant.eval``, the same sampling seed, so models are
compared on common random numbers) through a plain full-precision copy holding the
dequantized weights of the *reloaded checkpoint* (:func:`dequantized_copy`): numerically the
quantized model (checked: the logits agree within ``EXPORT_LOGIT_TOL``), without paying fake
quantization at every decoding step.

Resuming. Each QAT run keeps its state under ``<ckpt_root>/quant-qat-<reasoner>-w<bits>-<run>-<key>/``
(outside the DVC outputs), ``key`` being a hash of everything that determines the trained
weights (FP model and traces file contents, PTQ checkpoint contents, scheme, training params,
loss, seed, probe). A killed stage resumes from the last checkpoint of the run it was in;
finished runs keep only their final weights (``final.pt``), training stats, probe curve, dvclive
logs and evaluation (keyed by the eval params), so re-running a stage after, say, an eval change
re-evaluates without retraining. Delete ``.ckpt/quant-*`` to reclaim the space.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluate import EvalItem, evaluate_tier, tiny_items
from ..generate import SamplingConfig, generate
from ..io import ckpt_root as ckpt_root_dir
from ..io import fresh_tmp_dir, params_hash, replace_dir, write_json
from ..models.data import sft_example
from ..models.train import Example, train
from ..params import Params, ParamsError, TrainParams
from .config import QuantConfig, QuantEvalConfig, TracesConfig

__all__ = [
    "QATRun",
    "check_quant_params",
    "qat_runs",
    "train_items",
    "test_items",
    "sample_traces",
    "load_traces",
    "trace_examples",
    "calibration_texts",
    "evaluate_suite",
    "probe_accuracy",
    "dequantized_copy",
    "weights_bytes",
    "make_traces",
    "run_ptq_grid",
    "run_qat_grid",
    "qat_loss",
    "scheme_for",
]


#: Logit agreement (relative) required between a reloaded checkpoint and the model that wrote it.
RELOAD_TOL = 1e-3


# ----------------------------------------------------------------------------- params
def check_quant_params(P: Params, reasoner: str | None = None, bits: int | None = None) -> QuantConfig:
    """``P.quant`` after the checks that need the rest of params.yaml (raise :class:`ParamsError`)."""
    qc = P.quant
    try:
        qc.check_models(P.models)
    except ValueError as e:
        raise ParamsError(f"params.yaml: {e}") from None
    if reasoner is not None and reasoner not in qc.reasoners:
        raise ParamsError(f"params.yaml: quant.reasoners {qc.reasoners} does not list {reasoner!r}")
    if bits is not None and bits not in qc.bits:
        raise ParamsError(f"params.yaml: quant.bits {qc.bits} does not list {bits}")
    return qc


def scheme_for(qc: QuantConfig, bits: int):
    from .scheme import QuantScheme

    return QuantScheme(bits=int(bits), group_size=qc.group_size, symmetric=qc.symmetric)


def qat_train_params(qc: QuantConfig) -> TrainParams:
    return TrainParams(**{k: getattr(qc.qat, k) for k in TrainParams.model_fields})


@dataclass(frozen=True)
class QATRun:
    """One QAT run of a (reasoner, bits) stage; ``rq1`` / ``rq2`` say which study it belongs to."""

    objective: str
    init: str
    bits: int
    seed: int
    rq1: bool = False
    rq2: bool = False

    @property
    def name(self) -> str:
        return f"{self.objective}-{self.init}-s{self.seed}"


def qat_runs(qc: QuantConfig, reasoner: str, bits: int) -> list[QATRun]:
    """The QAT runs of stage ``quant_qat@<reasoner>-<bits>`` (RQ1 first, then the extra RQ2 ones).

    RQ1: every objective from ``qat.init`` for every ``qat.seeds`` seed. RQ2 (only at
    ``qat.ablation.bits`` and for the ablation reasoners): every ``ablation.inits`` init x every
    objective for the ablation seeds. A run that belongs to both is run once, flagged for both.
    """
    flags: dict[tuple[str, str, int], set[str]] = {}
    for seed in qc.qat.seeds:
        for obj in qc.qat.objectives:
            flags.setdefault((obj, qc.qat.init, seed), set()).add("rq1")
    if bits == qc.qat.ablation.bits and reasoner in qc.ablation_reasoners():
        for seed in qc.ablation_seeds():
            for init in qc.qat.ablation.inits:
                for obj in qc.qat.objectives:
                    flags.setdefault((obj, init, seed), set()).add("rq2")
    return [QATRun(o, i, int(bits), s, "rq1" in f, "rq2" in f) for (o, i, s), f in flags.items()]


# ----------------------------------------------------------------------------- data
def _hub_world(world_dir: str | Path) -> bool:
    return (Path(world_dir) / "hub.json").exists()


def test_items(world_dir: str | Path, tier: str, limit: int | None = None) -> list[EvalItem]:
    """The first ``limit`` test problems of ``tier`` as :class:`EvalItem` (tiny or paper world)."""
    from ..world.build import load_problems

    if _hub_world(world_dir):
        from ..hub import load_hub_items

        items = load_hub_items(world_dir, tier)
    else:
        items = tiny_items(load_problems(Path(world_dir), f"test_{tier}"))
    return items[:limit] if limit else items


def train_items(world_dir: str | Path, n: int, seed: int, dialect: str | None = None
                ) -> tuple[list[EvalItem], list[str | None]]:
    """A seeded random subset of ``n`` training-pool problems (in pool order) as :class:`EvalItem`.

    Also returns each problem's reference solution in ``dialect`` (tiny world; the paper world's
    ``sol_reference``), or ``None`` where the pool has none.
    """
    from ..world.build import load_split, row_problem

    ds = load_split(world_dir, "train")
    idx = np.sort(np.random.default_rng([seed, 4]).permutation(len(ds))[: min(n, len(ds))])
    rows = list(ds.select(idx.tolist()))
    col = f"sol_{dialect}" if dialect and f"sol_{dialect}" in ds.column_names else (
        "sol_reference" if "sol_reference" in ds.column_names else None)
    refs = [r[col] if col else None for r in rows]
    if _hub_world(world_dir):
        from ..hub import check_math

        return [EvalItem(r["pid"], r["prompt"], partial(check_math, r["answer"])) for r in rows], refs
    where = str(Path(world_dir) / "train")
    return tiny_items([row_problem(r, where) for r in rows]), refs


def sample_traces(model, tokenizer, items: Sequence[EvalItem], tc: TracesConfig,
                  references: Sequence[str | None] | None = None) -> tuple[list[dict], dict]:
    """Sample ``tc.samples_per_problem`` solutions per item and keep the verified-correct ones.

    A sample is kept when it is complete (the fragment filter of rejection sampling: ended with
    ``<eos>``, not empty, no repeated sentence) and its answer is correct; at most
    ``tc.max_per_problem`` distinct kept texts per problem, chosen under ``(tc.seed, pid)``.
    With ``tc.fallback == "reference"`` a problem without a kept sample contributes its
    reference solution (``references[i]``) instead, marked ``source: reference`` (for the smoke
    profile, whose barely trained reasoners solve nothing).

    Returns:
        ``(traces, stats)``: ``traces`` are ``{"pid", "prompt", "text", "n_tokens", "source"}``
        dicts in item order; ``stats`` counts problems, samples, correct samples, solvable
        problems, traces (and fallbacks), their mean length and the sampling wall time.
    """
    from ..paradox.rejection import fragment_reason, pid_rng

    if not items:
        raise ValueError("sample_traces: no problems")
    cfg = SamplingConfig(n=tc.samples_per_problem, temperature=tc.temperature, top_p=tc.top_p,
                         max_new_tokens=tc.max_new_tokens, seed=tc.seed, batch_size=tc.batch_size)
    t0 = time.perf_counter()
    out = generate(model, tokenizer, [it.prompt for it in items], cfg, desc="quant traces")
    wall = time.perf_counter() - t0
    traces: list[dict] = []
    if tc.fallback == "reference" and (references is None or len(references) != len(items)):
        raise ValueError("quant.traces.fallback=reference needs one reference solution per problem")
    n_correct = n_solvable = n_fallback = 0
    for i, (it, samples) in enumerate(zip(items, out)):
        good: dict[str, Any] = {}
        for s in samples:
            ok = fragment_reason(s) is None and bool(it.check(s.text).correct)
            n_correct += ok
            if ok and s.text not in good:
                good[s.text] = s
        if not good:
            ref = references[i] if references is not None else None
            if tc.fallback == "reference" and ref:
                n_fallback += 1
                traces.append({"pid": it.pid, "prompt": it.prompt, "text": ref,
                               "n_tokens": len(tokenizer(ref, add_special_tokens=False)["input_ids"]),
                               "source": "reference"})
            continue
        n_solvable += 1
        kept = list(good.values())
        pick = sorted(pid_rng(tc.seed, it.pid, "quant-traces").permutation(len(kept))[: tc.max_per_problem])
        traces += [{"pid": it.pid, "prompt": it.prompt, "text": kept[j].text, "n_tokens": kept[j].n_tokens,
                    "source": "self"} for j in pick]
    n_samples = len(items) * tc.samples_per_problem
    stats = {
        "n_problems": len(items),
        "n_samples": n_samples,
        "pass_rate": n_correct / n_samples,
        "solvable": n_solvable,
        "solvable_fraction": n_solvable / len(items),
        "n_traces": len(traces),
        "n_reference_fallback": n_fallback,
        "mean_trace_tokens": float(np.mean([t["n_tokens"] for t in traces])) if traces else 0.0,
        "wall_s": wall,
    }
    return traces, stats


def write_traces(path: str | Path, traces: Sequence[Mapping[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(dict(t), sort_keys=True) + "\n" for t in traces))
    os.replace(tmp, path)


def load_traces(path: str | Path) -> list[dict]:
    """Traces written by :func:`make_traces` (JSON lines); raises naming the file on bad content."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"traces not found: {path} (run its quant_traces stage first)")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append({"pid": rec["pid"], "prompt": rec["prompt"], "text": rec["text"],
                        "n_tokens": rec.get("n_tokens", 0), "source": rec.get("source", "self")})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{i}: not a trace record ({e})") from None
    if not out:
        raise ValueError(
            f"{path}: no traces (the full-precision model solved none of the sampled problems; "
            "raise quant.traces.n_problems / samples_per_problem or train the reasoner longer)"
        )
    return out


def trace_examples(tokenizer, traces: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Training examples (loss on the solution and its ``<eos>``) from traces."""
    return [sft_example(tokenizer, t["prompt"], t["text"]) for t in traces]


def calibration_texts(qc: QuantConfig, world_dir: str | Path, traces: Sequence[Mapping[str, Any]],
                      eos: str) -> list[str]:
    """``calib.n_samples`` PTQ calibration texts from ``calib.domain``.

    ``traces``: prompt + solution + ``eos`` of the QAT training traces (the aligned domain);
    ``general``: paragraphs of the world's general-domain corpus (no arithmetic).
    """
    n = qc.calib.n_samples
    if qc.calib.domain == "traces":
        if not traces:
            raise ValueError("quant.calib.domain=traces but there are no traces")
        return [f"{t['prompt']} {t['text']} {eos}" for t in traces[:n]]
    from ..world.build import load_split

    texts = [t for t in load_split(world_dir, "general")["text"] if t.strip()][:n]
    if not texts:
        raise ValueError(f"quant.calib.domain=general but {world_dir}/general is empty")
    return texts


# ----------------------------------------------------------------------------- models
@torch.no_grad()
def dequantized_copy(template: torch.nn.Module, qmodel: torch.nn.Module) -> torch.nn.Module:
    """A plain copy of ``template`` (the FP model) holding ``qmodel``'s quantized weights.

    ``qmodel`` is a PTQ model (llm-compressor, in memory), a reloaded compressed-tensors
    checkpoint (:func:`~reasonlab.quant.params.load_quantized`) or a QAT model
    (:func:`~reasonlab.quant.fakequant.prepare_qat`): every weight-quantized linear gets its
    dequantized grid weight ``(q - z) * s`` (bitwise what ``qmodel`` uses in its forward),
    every other parameter (embeddings, norms rescaled by AWQ, ``lm_head``) is copied.
    """
    from .fakequant import fake_quant
    from .params import read_quant_params
    from .scheme import QuantScheme

    plain = copy.deepcopy(template)
    qparams = read_quant_params(qmodel)
    if not qparams:
        raise ValueError("dequantized_copy: qmodel has no quantized layers")
    source = dict(qmodel.named_parameters(remove_duplicate=False))
    for name, param in plain.named_parameters():
        module, _, leaf = name.rpartition(".")
        if leaf == "weight" and module in qparams:
            q = qparams[module]
            scheme = QuantScheme(bits=q.args.num_bits, group_size=q.args.group_size, symmetric=q.args.symmetric)
            value = fake_quant(q.weight.float(), q.scale.float(), q.zero_point, scheme)
        elif name in source:
            value = source[name]
        else:
            raise ValueError(f"dequantized_copy: qmodel has no parameter {name!r}")
        param.copy_(value.to(dtype=param.dtype))
    plain.eval()
    return plain


def weights_bytes(path: str | Path) -> int:
    """Bytes of the weight files (``*.safetensors`` / ``*.bin``) of a checkpoint directory."""
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.suffix in (".safetensors", ".bin"))


def _digest(path: str | Path) -> str:
    """Content hash of a file or of a directory's weight/config files (for checkpoint keys)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        f for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".json") and f.name != "meta.json")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _check_logits(reference, candidate, tokenizer, text: str, what: str) -> float:
    from .export import max_logit_diff

    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"][:64]])
    reference.eval()
    diff = max_logit_diff(reference, candidate, ids)
    if diff > RELOAD_TOL:
        raise RuntimeError(f"{what}: reloaded checkpoint disagrees with the model that wrote it "
                           f"(max relative logit difference {diff:.2e} > {RELOAD_TOL})")
    return diff


# ----------------------------------------------------------------------------- evaluation
def eval_suite(world_dir: str | Path, ev: QuantEvalConfig) -> dict[str, list[EvalItem]]:
    return {tier: test_items(world_dir, tier, ev.limit) for tier in ev.tiers}


def evaluate_suite(model, tokenizer, suite: Mapping[str, Sequence[EvalItem]], ev: QuantEvalConfig,
                   seed: int) -> dict:
    """Compact metrics of one model: per tier ``avg_at_k``, ``greedy``, ``mean_len_tokens``; their tier means.

    Keys do not depend on ``k`` (stable ``dvc exp show`` columns); ``k`` is stored beside them.
    """
    out: dict[str, Any] = {}
    for tier, items in suite.items():
        m, _ = evaluate_tier(model, tokenizer, list(items), k=ev.k, temperature=ev.temperature, top_p=ev.top_p,
                             max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=seed, tier=tier)
        out[tier] = {"avg_at_k": m[f"avg@{ev.k}"], "greedy": m["greedy"], "mean_len_tokens": m["mean_len_tokens"]}
    out["avg_at_k"] = float(np.mean([out[t]["avg_at_k"] for t in suite]))
    out["mean_len_tokens"] = float(np.mean([out[t]["mean_len_tokens"] for t in suite]))
    return out


def probe_accuracy(model, tokenizer, items: Sequence[EvalItem], *, k: int = 1, temperature: float = 0.0,
                   max_new_tokens: int = 160, seed: int = 0, batch_size: int = 512) -> float:
    """Avg@k on ``items`` (``temperature`` 0: greedy accuracy): the cheap accuracy-vs-step probe.

    Sampled rather than greedy by default in the configs: greedy decoding hides most of the
    quantization damage that Avg@k at T=1 shows (measured here: RTN and GPTQ W3 inits had the same
    greedy accuracy, 4 points apart in Avg@4).
    """
    outs = generate(model, tokenizer, [it.prompt for it in items],
                    SamplingConfig(k, temperature, 1.0, max_new_tokens, seed, batch_size), desc="probe")
    return float(np.mean([bool(it.check(s.text).correct) for it, o in zip(items, outs) for s in o]))


# ----------------------------------------------------------------------------- stages
def setup_threads() -> None:
    """One intra-op thread unless ``OMP_NUM_THREADS`` says otherwise.

    The quant models are tiny (every op is a few microseconds), so a second thread buys little,
    and on a 2-core machine shared with other jobs OpenMP barriers made two threads several times
    *slower* (AWQ: 57 s instead of 0.3 s, see :mod:`reasonlab.quant.ptq`).
    """
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def _load_fp(model_dir: str | Path):
    from ..models.zoo import load_causal_lm, load_tokenizer_any

    return load_causal_lm(model_dir), load_tokenizer_any(model_dir)


def make_traces(P: Params, reasoner: str, model_dir: str | Path, world_dir: str | Path,
                out_path: str | Path) -> dict:
    """Stage ``quant_traces``: sample and verify the QAT training traces of ``reasoner``."""
    setup_threads()
    qc = check_quant_params(P, reasoner)
    model, tok = _load_fp(model_dir)
    items, refs = train_items(world_dir, qc.traces.n_problems, qc.traces.seed, P.model(reasoner).dialect)
    traces, stats = sample_traces(model, tok, items, qc.traces, refs)
    if not traces:
        raise RuntimeError(
            f"{reasoner}: no correct trace among {stats['n_samples']} samples; raise quant.traces.n_problems "
            "or quant.traces.samples_per_problem, or train the reasoner longer")
    write_traces(out_path, traces)
    return {"reasoner": reasoner, **stats}


def run_ptq_grid(P: Params, reasoner: str, model_dir: str | Path, world_dir: str | Path, traces_path: str | Path,
                 out_dir: str | Path) -> dict:
    """Stage ``quant_ptq``: evaluate the FP reasoner and every PTQ model (``methods`` x ``bits``).

    Each PTQ model is written to ``out_dir/<method>-w<bits>/`` as a pack-quantized checkpoint,
    reloaded, checked against the in-memory model and evaluated. Returns the metrics dict:
    ``{"reasoner", "k", "scheme", "calib", "models": {"fp": {...}, "<method>-w<bits>": {...}}}``.
    """
    from .export import dir_size_bytes
    from .ptq import load_quantized, run_ptq, save_quantized

    setup_threads()
    qc = check_quant_params(P, reasoner)
    fp, tok = _load_fp(model_dir)
    traces = load_traces(traces_path)
    calib = calibration_texts(qc, world_dir, traces, tok.eos_token)
    suite = eval_suite(world_dir, qc.eval)
    check_text = calib[0]
    models: dict[str, dict] = {}
    t0 = time.perf_counter()
    models["fp"] = {"method": "fp", "bits": 32, **evaluate_suite(fp, tok, suite, qc.eval, P.seed),
                    "size_bytes": dir_size_bytes(model_dir), "weights_bytes": weights_bytes(model_dir),
                    "eval_s": time.perf_counter() - t0}
    tmp = fresh_tmp_dir(out_dir)
    for bits in qc.bits:
        scheme = scheme_for(qc, bits)
        for method in qc.methods:
            name = f"{method}-w{bits}"
            t0 = time.perf_counter()
            qmodel = run_ptq(copy.deepcopy(fp), tok, method, scheme, calib, qc.calib.max_len, seed=P.seed)
            ptq_s = time.perf_counter() - t0
            meta = {"reasoner": reasoner, "method": method, "scheme": scheme.to_dict(), "calib": qc.calib.model_dump(),
                    "seed": P.seed}
            path = save_quantized(qmodel, tok, tmp / name, metadata=meta)
            plain = dequantized_copy(fp, load_quantized(path))
            diff = _check_logits(qmodel, plain, tok, check_text, f"{reasoner} {name}")
            t0 = time.perf_counter()
            ev = evaluate_suite(plain, tok, suite, qc.eval, P.seed)
            models[name] = {"method": method, "bits": bits, **ev, "size_bytes": dir_size_bytes(path),
                            "weights_bytes": weights_bytes(path), "ptq_s": ptq_s, "eval_s": time.perf_counter() - t0,
                            "reload_max_logit_diff": diff}
            print(f"[quant_ptq {reasoner}] {name}: avg@{qc.eval.k}={ev['avg_at_k']:.3f} (fp {models['fp']['avg_at_k']:.3f})")
    replace_dir(tmp, Path(out_dir))
    return {"reasoner": reasoner, "k": qc.eval.k, "scheme": {"group_size": qc.group_size, "symmetric": qc.symmetric},
            "calib": qc.calib.domain, "models": models}


def qat_loss(qc: QuantConfig, objective: str):
    """Per-token loss of a QAT objective: ``sft`` = CE; ``kd`` = the configured divergence (mixed with CE)."""
    from .losses import build_loss, ce_loss

    if objective == "sft":
        return ce_loss
    kd = qc.qat.kd
    params: dict[str, Any] = {"temperature": kd.temperature}
    if kd.kind == "jsd":
        params["beta"] = kd.beta
    if kd.ce_weight == 0:
        return build_loss(kd.kind, **params)
    return build_loss("mixed", weights={"ce": kd.ce_weight, kd.kind: 1.0 - kd.ce_weight}, **params)


def _read_curve(path: Path) -> dict[int, float]:
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()[1:]
    return {int(s): float(v) for s, v in (ln.split("\t") for ln in lines if ln.strip())}


def _write_curve(path: Path, curve: Mapping[int, float]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("step\tprobe_acc\n" + "".join(f"{s}\t{curve[s]:.6f}\n" for s in sorted(curve)))
    os.replace(tmp, path)


def run_qat_grid(P: Params, reasoner: str, bits: int, model_dir: str | Path, world_dir: str | Path,
                 traces_path: str | Path, ptq_dir: str | Path, out_dir: str | Path, plots_dir: str | Path,
                 ckpt_root: str | Path = ".ckpt") -> dict:
    """Stage ``quant_qat``: every QAT run of (``reasoner``, ``bits``) (see :func:`qat_runs`).

    Writes the exported checkpoints to ``out_dir/<run>/`` and, per run, the training curves
    (dvclive's ``loss.tsv``, ``lr.tsv``, ``grad_norm.tsv``) plus ``probe.tsv`` (step, probe
    accuracy, step 0 included) to ``plots_dir/<run>/``. Returns the
    metrics dict ``{"reasoner", "bits", "k", "steps", "init", "fp_weights_bytes", "runs": {...}}``.
    """
    from .export import dir_size_bytes, export_qat
    from .fakequant import prepare_qat
    from .params import load_quantized

    setup_threads()
    qc = check_quant_params(P, reasoner, bits)
    fp, tok = _load_fp(model_dir)
    fp.requires_grad_(False)
    traces = load_traces(traces_path)
    examples = trace_examples(tok, traces)
    suite = eval_suite(world_dir, qc.eval)
    probe_items = [it for t in qc.qat.probe.tiers for it in test_items(world_dir, t, qc.qat.probe.n_problems)]
    scheme = scheme_for(qc, bits)
    cfg = qat_train_params(qc)
    root = ckpt_root_dir(ckpt_root)
    base_key = {"reasoner": reasoner, "model": _digest(Path(model_dir)), "traces": _digest(traces_path),
                "scheme": scheme.to_dict(), "train": cfg.model_dump(), "learnable_scales": qc.qat.learnable_scales,
                "eval_every": qc.qat.eval_every, "probe": qc.qat.probe.model_dump()}
    eval_key = params_hash({"eval": qc.eval.model_dump(), "seed": P.seed})
    check_text = f"{traces[0]['prompt']} {traces[0]['text']}"

    out_tmp, plots_tmp = fresh_tmp_dir(out_dir), fresh_tmp_dir(plots_dir)
    runs: dict[str, dict] = {}
    for run in qat_runs(qc, reasoner, bits):
        ptq_path = None if run.init == "fp" else Path(ptq_dir) / f"{run.init}-w{bits}"
        if ptq_path is not None and not (ptq_path / "config.json").exists():
            raise FileNotFoundError(f"PTQ init {ptq_path} not found (run quant_ptq@{reasoner} first)")
        key = params_hash({**base_key, "objective": run.objective, "init": run.init, "seed": run.seed,
                           "kd": qc.qat.kd.model_dump() if run.objective == "kd" else None,
                           "ptq": _digest(ptq_path) if ptq_path else None})
        ck = root / f"quant-qat-{reasoner}-w{bits}-{run.name}-{key}"
        ck.mkdir(parents=True, exist_ok=True)
        desc = f"qat {reasoner} w{bits} {run.name}"

        student = copy.deepcopy(fp)
        student.requires_grad_(True)
        prepare_qat(student, scheme, "fp" if ptq_path is None else "ptq", ptq_model=ptq_path,
                    learnable_scales=qc.qat.learnable_scales)
        curve_path = ck / "probe.tsv"
        curve = _read_curve(curve_path)

        def probe(step: int, model) -> dict:
            pc = qc.qat.probe
            acc = probe_accuracy(dequantized_copy(fp, model), tok, probe_items, k=pc.k, temperature=pc.temperature,
                                 max_new_tokens=pc.max_new_tokens, seed=P.seed)
            curve[step] = acc
            _write_curve(curve_path, curve)
            return {"probe_acc": acc}

        if 0 not in curve:
            probe(0, student)
        final, stats_path = ck / "final.pt", ck / "train.json"
        if final.exists() and stats_path.exists():
            student.load_state_dict(torch.load(final, weights_only=True))
            stats = json.loads(stats_path.read_text())
            print(f"[{desc}] finished earlier: reusing {final}")
        else:
            teacher = fp if run.objective == "kd" else None
            stats = train(student, examples, cfg, pad_id=tok.pad_token_id, seed=run.seed, ckpt_dir=ck,
                          live_dir=ck / "live", loss_fn=qat_loss(qc, run.objective), teacher=teacher,
                          on_log=probe, eval_every=qc.qat.eval_every, desc=desc)
            tmp = final.with_name(final.name + ".tmp")
            torch.save(student.state_dict(), tmp)
            os.replace(tmp, final)
            write_json(stats_path, stats)
            (ck / "state.pt").unlink(missing_ok=True)  # optimizer state: only needed to resume mid-run
        student.eval()

        meta = {"reasoner": reasoner, "objective": run.objective, "init": run.init, "seed": run.seed,
                "qat": qc.qat.model_dump(), "key": key}
        path = export_qat(student, tok, scheme, out_tmp / run.name, metadata=meta)
        plain = dequantized_copy(fp, load_quantized(path))
        diff = _check_logits(student, plain, tok, check_text, f"{desc} export")
        eval_path = ck / f"eval-{eval_key}.json"
        if eval_path.exists():
            ev = json.loads(eval_path.read_text())
        else:
            ev = evaluate_suite(plain, tok, suite, qc.eval, P.seed)
            write_json(eval_path, ev)
        run_plots = plots_tmp / run.name
        run_plots.mkdir(parents=True, exist_ok=True)
        for tsv in sorted((ck / "live" / "plots" / "metrics").glob("*.tsv")):  # dvclive: loss, lr, grad_norm
            if tsv.stem != "probe_acc":  # probe.tsv below also has step 0
                shutil.copy2(tsv, run_plots / tsv.name)
        shutil.copy2(curve_path, run_plots / "probe.tsv")
        runs[run.name] = {
            "objective": run.objective, "init": run.init, "seed": run.seed, "rq1": run.rq1, "rq2": run.rq2,
            **ev, "size_bytes": dir_size_bytes(path), "weights_bytes": weights_bytes(path),
            "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"),
            "probe_init": curve.get(0), "probe_final": curve.get(max(curve)),
            "export_max_logit_diff": diff,
        }
        print(f"[{desc}] avg@{qc.eval.k}={ev['avg_at_k']:.3f} probe {curve.get(0):.3f} -> {curve.get(max(curve)):.3f}")
    replace_dir(out_tmp, Path(out_dir))
    replace_dir(plots_tmp, Path(plots_dir))
    return {"reasoner": reasoner, "bits": int(bits), "k": qc.eval.k, "steps": qc.qat.steps, "init": qc.qat.init,
            "fp_weights_bytes": weights_bytes(model_dir), "runs": runs}
