"""One reusable training loop for every causal-LM training in the repo.

Pretraining, SFT/DFT fine-tuning and QAT (SFT or KD) all run through
:func:`train`. What changes between them is the per-token loss
(``loss_fn(logits, targets, teacher_logits) -> [B, T]``), optionally a teacher
model, and the examples. The loop computes the loss on solution tokens only,
follows a warmup + cosine schedule, clips gradients, logs the curve with
dvclive, checkpoints every ``ckpt_every`` steps and resumes from the last
checkpoint to exactly the same state (batches are a pure function of the
seed and the step).

Why not ``transformers.Trainer``: it works, but its checkpoint/resume on CPU
writes several files per step and its data order is not a pure function of
the step, which the resume-equality test and the pluggable teacher-logit loss
need. The loop is ~150 lines and tested.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from ..params import TrainParams
from .losses import ce_loss

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    target_ids: list[int]  # loss is computed on these (the solution and its <eos>)


def collate(examples: list[Example], pad_id: int, max_len: int) -> dict[str, torch.Tensor]:
    seqs, masks = [], []
    for ex in examples:
        ids = (ex.prompt_ids + ex.target_ids)[:max_len]
        m = ([0] * len(ex.prompt_ids) + [1] * len(ex.target_ids))[:max_len]
        seqs.append(ids)
        masks.append(m)
    T = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), T), dtype=torch.long)
    loss_mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        input_ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
    return {"input_ids": input_ids, "attention_mask": attn, "loss_mask": loss_mask}


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of the examples in batch ``step``: epoch-wise permutations, a pure function of (seed, step)."""
    per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    epoch, off = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < batch_size:
        return np.resize(perm, batch_size)
    return perm[off * batch_size : (off + 1) * batch_size]


def masked_loss(model, batch, loss_fn: LossFn, teacher=None) -> tuple[torch.Tensor, int]:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1]
    targets = batch["input_ids"][:, 1:]
    mask = batch["loss_mask"][:, 1:]
    t_logits = None
    if teacher is not None:
        with torch.no_grad():
            t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    per_tok = loss_fn(logits, targets, t_logits)
    n = int(mask.sum())
    return (per_tok * mask).sum() / max(n, 1), n


def _save_ckpt(path: Path, model, opt, sched, step: int, extra: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
         "rng": torch.get_rng_state(), **extra},
        tmp,
    )
    os.replace(tmp, path)


def train(
    model,
    examples: list[Example],
    cfg: TrainParams,
    *,
    pad_id: int,
    seed: int,
    ckpt_dir: str | Path | None = None,
    live_dir: str | Path | None = None,
    loss_fn: LossFn = ce_loss,
    teacher=None,
    on_log: Callable[[int, object], dict] | None = None,
    eval_every: int | None = None,
    desc: str = "train",
    max_steps: int | None = None,
) -> dict:
    """Train ``model`` in place for ``cfg.steps`` steps; returns throughput and final-loss stats.

    ``on_log(step, model)`` may return extra metrics (e.g. accuracy) every ``eval_every`` steps;
    they are logged to dvclive beside the loss. ``max_steps`` stops early (to test resume).
    """
    if not examples:
        raise ValueError("train: no examples")
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
    ckpt = Path(ckpt_dir) / "state.pt" if ckpt_dir else None
    if ckpt and ckpt.exists():
        try:
            st = torch.load(ckpt, weights_only=False)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            torch.set_rng_state(st["rng"])
            start = int(st["step"])
        except Exception as e:
            raise RuntimeError(f"checkpoint {ckpt} is corrupt ({e}); delete it to restart from scratch") from e
        print(f"[{desc}] resuming from {ckpt} at step {start}/{cfg.steps}")
    if ckpt:
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    live = None
    if live_dir is not None:
        from dvclive import Live

        live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=None, resume=start > 0, report=None)

    model.train()
    end = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
    tokens, seen_tokens, t0 = 0, 0, time.perf_counter()
    loss_ema, last_loss = None, float("nan")
    bar = tqdm(range(start, end), desc=desc, initial=start, total=cfg.steps, mininterval=2.0)
    for step in bar:
        idx = batch_indices(len(examples), cfg.batch_size, step, seed)
        batch = collate([examples[i] for i in idx], pad_id, cfg.max_len)
        loss, n = masked_loss(model, batch, loss_fn, teacher)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        last_loss = float(loss)
        if not math.isfinite(last_loss):
            raise FloatingPointError(f"[{desc}] loss is {last_loss} at step {step}; lower the learning rate")
        loss_ema = last_loss if loss_ema is None else 0.9 * loss_ema + 0.1 * last_loss
        tokens += n
        seen_tokens += int(batch["attention_mask"].sum())
        done = step + 1
        if live is not None and (done % cfg.log_every == 0 or done == end):
            live.step = done
            live.log_metric("loss", last_loss)
            live.log_metric("lr", sched.get_last_lr()[0])
            live.log_metric("grad_norm", float(gnorm))
        if on_log is not None and eval_every and (done % eval_every == 0 or done == end):
            model.eval()
            extra = on_log(done, model) or {}
            model.train()
            if live is not None:
                live.step = done
                for k, v in extra.items():
                    live.log_metric(k, v)
        bar.set_postfix(loss=f"{loss_ema:.3f}")
        if ckpt and (done % cfg.ckpt_every == 0 or done == end):
            _save_ckpt(ckpt, model, opt, sched, done, {})
    wall = time.perf_counter() - t0
    if live is not None:
        live.end()
    model.eval()
    return {
        "steps": end,
        "resumed_from": start,
        "final_loss": last_loss,
        "wall_s": wall,
        "target_tokens": tokens,
        "tokens": seen_tokens,
        "tokens_per_s": seen_tokens / wall if wall > 0 else float("nan"),
    }
