"""The one training loop of the repository.

Pretraining, SFT/DFT fine-tuning of the students, the oracle's modes, QAT (SFT or KD) and the
reward model all run through :func:`train`. What changes between them is the per-token loss
(``loss_fn(logits, targets, teacher_logits) -> [B, T]``), optionally a teacher model, the
examples, and for the reward model the whole batch loss (``batch_loss``: a Bradley-Terry loss on
pairs). The loop follows a warmup + cosine schedule, clips gradients, logs the curve with
dvclive, checkpoints every ``ckpt_every`` steps (weights in safetensors, see
:mod:`reasonlab.checkpoint`) and resumes from the last checkpoint to exactly the same state
(batches are a pure function of the seed and the step).

Several processes (paper scale): the loop runs unchanged under ``accelerate launch`` (DDP or FSDP
from accelerate's config). Each process takes a contiguous slice of the global batch; the loss is
the slice's summed loss over the *global* number of loss units, times the number of processes
(DDP averages gradients), so the gradient is the single-process gradient of the global mean. Only
the main process logs and writes checkpoints. In one process (``python stages/...``) accelerate
changes nothing: the results are bitwise those of the plain loop. On CPU, launch with
``accelerate launch --multi_gpu --num_processes N`` (it starts torchrun; the loop asks accelerate
for CPU gloo when no GPU is visible).

Why not ``transformers.Trainer``: it works, but its checkpoint/resume on CPU writes several files
per step and its data order is not a pure function of the step, which the resume-equality test and
the pluggable teacher-logit and pairwise losses need. The loop is ~200 lines and tested.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from ..checkpoint import load_train_state, save_train_state
from ..io import write_json, write_text
from ..schema import TrainParams
from .batching import collate, model_inputs, pack
from .losses import LossFn, ce_loss

BatchLoss = Callable[[Any, Sequence[Any]], "tuple[torch.Tensor, int, int, int]"]
"""``batch_loss(model, examples) -> (loss_sum, n, real, computed)``: the summed loss over the batch's ``n``
loss units (target tokens, pairs), the number of real tokens the model processed and the number of positions
it computed (real + padding)."""


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of the examples in batch ``step``: epoch-wise permutations, a pure function of (seed, step)."""
    per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    epoch, off = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < batch_size:
        return np.resize(perm, batch_size)
    return perm[off * batch_size : (off + 1) * batch_size]


def to_model_device(batch: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """``batch`` on the device of ``model``'s parameters (a no-op on CPU)."""
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in batch.items()}


def masked_loss_sum(model, batch, loss_fn: LossFn, teacher=None) -> tuple[torch.Tensor, int]:
    """Sum of the per-token loss over the target tokens of ``batch`` (padded or packed), and their number."""
    inputs = to_model_device(model_inputs(batch), model)
    out = model(**inputs, use_cache=False)
    logits = out.logits[:, :-1]
    targets = inputs["input_ids"][:, 1:]
    mask = batch["loss_mask"][:, 1:].to(logits.device)
    t_logits = None
    if teacher is not None:
        with torch.no_grad():
            t_logits = teacher(**inputs, use_cache=False).logits[:, :-1]
    per_tok = loss_fn(logits, targets, t_logits)
    return (per_tok * mask).sum(), int(mask.sum())


def masked_loss(model, batch, loss_fn: LossFn, teacher=None) -> tuple[torch.Tensor, int]:
    """Mean of the per-token loss over the target tokens of ``batch``, and their number."""
    total, n = masked_loss_sum(model, batch, loss_fn, teacher)
    return total / max(n, 1), n


def lm_batch_loss(loss_fn: LossFn, pad_id: int, max_len: int, teacher=None, packed: bool = True) -> BatchLoss:
    """The causal-LM batch loss: :func:`~.batching.pack` (or pad) :class:`Example` s, per-token ``loss_fn`` on the
    targets. Packing computes the same loss without the pad tokens (see :mod:`.batching`)."""
    make = pack if packed else collate

    def batch_loss(model, examples):
        batch = make(list(examples), pad_id, max_len)
        total, n = masked_loss_sum(model, batch, loss_fn, teacher)
        return total, n, batch["n_real"], batch["n_computed"]

    return batch_loss


def no_curves(live_dir: str | Path | None) -> None:
    """The (empty) curves folder of a stage that trains nothing (a released model used as it is), so that
    its declared DVC plots exist."""
    if live_dir is not None:
        (Path(live_dir) / "plots" / "metrics").mkdir(parents=True, exist_ok=True)


def _curve_rows(tsv: Path, step: int) -> tuple[list[str], list[list[str]]]:
    """dvclive curve ``tsv``'s header and its whole rows logged at or before ``step``: a row cut short by a
    kill in mid-write (too few fields, or a step that does not parse) is dropped with the rows after ``step``."""
    lines = tsv.read_text().splitlines()
    head = lines[0].split("\t") if lines else []
    if "step" not in head:
        return head, []
    col, rows = head.index("step"), []
    for ln in lines[1:]:
        fields = ln.split("\t")
        if len(fields) != len(head):
            continue
        try:
            s = int(float(fields[col]))
        except ValueError:
            continue
        if s <= step:
            rows.append(fields)
    return head, rows


def _rewind_live(live_dir: Path, step: int) -> None:
    """Put dvclive's directory back where it stood at checkpoint ``step``, whatever a kill left in it.

    The curves lose the rows logged after ``step`` (and a row cut in mid-write); the summary ``metrics.json``,
    which dvclive writes in place and a kill can leave empty, is rebuilt from the curves' last rows, so a
    resumed run ends with the summary of an uninterrupted one. dvclive's own resume reads that summary."""
    root, summary = live_dir / "plots" / "metrics", {}
    for tsv in sorted(root.rglob("*.tsv")):
        head, rows = _curve_rows(tsv, step)
        if "step" not in head:  # killed before dvclive wrote the header: dvclive starts the file afresh
            tsv.unlink()
            continue
        write_text(tsv, "\n".join(["\t".join(head)] + ["\t".join(r) for r in rows]) + "\n")
        if not rows:
            continue
        raw = rows[-1][-1]  # the metric's own column is the last (dvclive: [timestamp,] step, name)
        try:
            val: float | str = float(raw)
            if not math.isfinite(val):
                val = raw  # dvclive logs nan and inf as strings
        except ValueError:
            val = raw
        node = summary
        *parents, leaf = tsv.relative_to(root).with_suffix("").parts
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = val
    summary["step"] = step
    write_json(live_dir / "metrics.json", summary)


def train(
    model,
    examples: Sequence[Any],
    cfg: TrainParams,
    *,
    pad_id: int | None = None,
    seed: int,
    ckpt_dir: str | Path | None = None,
    live_dir: str | Path | None = None,
    loss_fn: LossFn = ce_loss,
    teacher=None,
    batch_loss: BatchLoss | None = None,
    on_log: Callable[[int, object], dict] | None = None,
    eval_every: int | None = None,
    desc: str = "train",
    max_steps: int | None = None,
) -> dict:
    """Train ``model`` in place for ``cfg.steps`` steps; returns throughput and final-loss stats.

    ``examples`` are :class:`Example` s trained with ``loss_fn`` (and ``teacher``), unless
    ``batch_loss`` says how a batch of them is scored (e.g. pairs for a reward model).
    ``on_log(step, model)`` may return extra metrics (e.g. accuracy) every ``eval_every`` steps;
    they are logged to dvclive beside the loss. ``max_steps`` stops early (to test resume).
    """
    from accelerate import Accelerator

    if not examples:
        raise ValueError("train: no examples")
    if cfg.steps is None or cfg.warmup is None:
        raise ValueError("train: cfg needs steps and warmup fixed (TrainParams.resolve)")
    if batch_loss is None:
        if pad_id is None:
            raise ValueError("train: pad_id is needed to collate examples")
        batch_loss = lm_batch_loss(loss_fn, pad_id, cfg.max_len, teacher)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    if cfg.batch_size < world:
        raise ValueError(f"train: batch_size={cfg.batch_size} is smaller than the {world} processes")
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup, cfg.steps, min_lr_rate=cfg.min_lr_ratio)
    start = 0
    # what the returned stats accumulate, kept in the checkpoint so a resumed run reports what an
    # uninterrupted one would
    acc_stats = {"tokens": 0, "seen_tokens": 0, "computed_tokens": 0, "last_loss": float("nan"), "loss_ema": None}
    ckpt = Path(ckpt_dir) if ckpt_dir else None
    state = load_train_state(ckpt, model) if ckpt else None  # every process, before prepare
    if state is not None:
        start, st = state
        try:
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            torch.set_rng_state(st["rng"])
            acc_stats.update(st["stats"])
        except Exception as e:
            raise RuntimeError(f"checkpoint {ckpt} does not fit this run ({e}); delete it to restart from scratch") from e
        print(f"[{desc}] resuming from {ckpt} at step {start}/{cfg.steps}")
    # the scheduler is not prepared: accelerate would step it once per process and every step
    wrapped, opt = acc.prepare(model, opt)
    if teacher is not None:
        teacher.to(acc.device).eval().requires_grad_(False)  # frozen, each process has its copy: no DDP

    live = None
    if live_dir is not None and main:
        from dvclive import Live

        if start > 0:
            _rewind_live(Path(live_dir), start)
        live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=None, resume=start > 0, report=None)
        if start > 0:  # dvclive's resume counts from the summary's step + 1, and end() would write that step back
            live.step = start
            live.summary.pop("step", None)

    wrapped.train()
    end = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    tokens, seen_tokens, computed = acc_stats["tokens"], acc_stats["seen_tokens"], acc_stats["computed_tokens"]
    t0 = time.perf_counter()
    loss_ema, last_loss = acc_stats["loss_ema"], acc_stats["last_loss"]
    bar = tqdm(range(start, end), desc=desc, initial=start, total=cfg.steps, mininterval=2.0, disable=not main)
    for step in bar:
        idx = batch_indices(len(examples), cfg.batch_size, step, seed)
        if world > 1:
            idx = np.array_split(idx, world)[rank]  # this process's contiguous slice of the global batch
        total, n, seen, comp = batch_loss(wrapped, [examples[i] for i in idx])
        if world > 1:  # the gradient of the global mean: DDP averages the processes' gradients
            n = int(acc.reduce(torch.tensor(n, device=acc.device), "sum"))
            seen = int(acc.reduce(torch.tensor(seen, device=acc.device), "sum"))
            comp = int(acc.reduce(torch.tensor(comp, device=acc.device), "sum"))
            loss = total / max(n, 1) * world
            last_loss = float(acc.reduce(total.detach().clone(), "sum")) / max(n, 1)
        else:
            loss = total / max(n, 1)
            last_loss = float(loss)
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        gnorm = acc.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if not math.isfinite(last_loss):
            raise FloatingPointError(f"[{desc}] loss is {last_loss} at step {step}; lower the learning rate")
        loss_ema = last_loss if loss_ema is None else 0.9 * loss_ema + 0.1 * last_loss
        tokens += n
        seen_tokens += seen
        computed += comp
        done = step + 1
        if live is not None and (done % cfg.log_every == 0 or done == end):
            live.step = done
            live.log_metric("loss", last_loss)
            live.log_metric("lr", sched.get_last_lr()[0])
            live.log_metric("grad_norm", float(gnorm))
        if on_log is not None and eval_every and (done % eval_every == 0 or done == end):
            model.eval()
            extra = (on_log(done, model) or {}) if main else {}  # the unwrapped model: no collective calls
            model.train()
            if live is not None:
                live.step = done
                for k, v in extra.items():
                    live.log_metric(k, v)
            acc.wait_for_everyone()
        bar.set_postfix(loss=f"{loss_ema:.3f}")
        if ckpt and (done % cfg.ckpt_every == 0 or done == end):
            if main:
                save_train_state(ckpt, model, done, {
                    "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                    "stats": {"tokens": tokens, "seen_tokens": seen_tokens, "computed_tokens": computed,
                              "last_loss": last_loss, "loss_ema": loss_ema}})
            acc.wait_for_everyone()
    wall = time.perf_counter() - t0
    if live is not None:
        live.end()
    model.eval()
    acc.free_memory()
    return {
        "steps": end,
        "final_loss": last_loss,
        "wall_s": wall,
        "target_tokens": tokens,
        "tokens": seen_tokens,
        "tokens_per_s": seen_tokens / wall if wall > 0 else float("nan"),
        "padding_share": 1 - seen_tokens / computed if computed else 0.0,
    }
