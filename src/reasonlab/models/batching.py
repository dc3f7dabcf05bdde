"""Token batches for causal-LM training and teacher forcing: padded or packed.

* :func:`collate` pads each sequence to the longest of the batch (``attention_mask`` marks the real tokens).
  Problems of 2 to 7 steps are mixed in every batch, so a padded batch computes a large share of pad tokens.
* :func:`pack` puts several sequences end to end in each row (first-fit decreasing into rows as long as the
  longest sequence) and gives each its own ``position_ids`` from 0. With ``attention_mask`` left out,
  transformers reads the restarts of ``position_ids`` as document boundaries and builds a block-diagonal causal
  mask (``masking_utils.find_packed_sequence_indices``), so no token attends across documents: every real token
  sees exactly what it sees in the padded batch, at the same position. The loss mask leaves out the first token
  of every document (nothing before it in its own document predicts it), as the padded batch does.

Both return ``loss_mask`` (the target tokens) and ``n_real`` / ``n_computed`` so the padding share of a batch is
``1 - n_real / n_computed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    target_ids: list[int]  # loss is computed on these (the solution and its end-of-sequence token)


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` of token sequences."""
    T = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[i, : len(s)] = 1
    return {"input_ids": input_ids, "attention_mask": attn}


def _sequences(examples: Sequence[Example], max_len: int) -> tuple[list[list[int]], list[list[bool]]]:
    seqs, masks = [], []
    for ex in examples:
        seqs.append((ex.prompt_ids + ex.target_ids)[:max_len])
        masks.append(([False] * len(ex.prompt_ids) + [True] * len(ex.target_ids))[:max_len])
    return seqs, masks


def collate(examples: Sequence[Example], pad_id: int, max_len: int) -> dict[str, torch.Tensor]:
    """:func:`pad_batch` of prompt + target ids (cut to ``max_len``), with the ``loss_mask`` of the targets."""
    seqs, masks = _sequences(examples, max_len)
    batch = pad_batch(seqs, pad_id)
    loss_mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    for i, m in enumerate(masks):
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
    n_real = int(batch["attention_mask"].sum())
    return {**batch, "loss_mask": loss_mask, "n_real": n_real, "n_computed": batch["input_ids"].numel()}


def pack_rows(lengths: Sequence[int], row_len: int) -> list[list[int]]:
    """First-fit decreasing: indices of the sequences in each row, no row longer than ``row_len``.
    Deterministic (ties keep the input order); every row keeps its sequences in input order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        if lengths[i] > row_len:
            raise ValueError(f"pack_rows: sequence {i} has {lengths[i]} tokens, more than row_len={row_len}")
        for r, f in enumerate(free):
            if lengths[i] <= f:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(row_len - lengths[i])
    return [sorted(r) for r in rows]


# Rows 1.5x the batch's longest sequence. World v2 batches of 64 (benchmarks/README.md, issue 22): padding 5% (1.25x:
# 13-21%) and 1.0-1.2x faster steps (qwen 1.0x, llama 1.18x, the oracle 1.17x, reasoner_s 1.2x); 1.75x and 2.0x no
# faster (longer rows cost more attention). World v1's shorter problems measured 1.25x best.
ROW_FACTOR = 1.5


def pack(examples: Sequence[Example], pad_id: int, max_len: int, row_factor: float = ROW_FACTOR) -> dict[str, torch.Tensor]:
    """Prompt + target ids (cut to ``max_len``) packed into rows of ``row_factor`` times the longest one, with per-document
    ``position_ids`` and the ``loss_mask`` of the targets (never a document's first token); no ``attention_mask``:
    pass ``input_ids`` and ``position_ids`` to the model. The tail of a row is padding, positioned as a
    document of its own with no loss."""
    seqs, masks = _sequences(examples, max_len)
    lengths = [len(s) for s in seqs]
    if min(lengths) == 0:
        raise ValueError("pack: an example has no tokens")
    if row_factor < 1:
        raise ValueError(f"pack: row_factor must be >= 1, got {row_factor}")
    rows = pack_rows(lengths, int(max(lengths) * row_factor))
    L = max(sum(lengths[i] for i in r) for r in rows)  # no all-padding column
    input_ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), L), dtype=torch.long)
    loss_mask = torch.zeros((len(rows), L), dtype=torch.bool)
    for r, members in enumerate(rows):
        at = 0
        for i in members:
            n = lengths[i]
            input_ids[r, at : at + n] = torch.tensor(seqs[i], dtype=torch.long)
            position_ids[r, at : at + n] = torch.arange(n)
            m = torch.tensor(masks[i], dtype=torch.bool)
            m[0] = False
            loss_mask[r, at : at + n] = m
            at += n
        position_ids[r, at:] = torch.arange(L - at)
    return {"input_ids": input_ids, "position_ids": position_ids, "loss_mask": loss_mask,
            "n_real": sum(lengths), "n_computed": input_ids.numel()}


def model_inputs(batch: dict) -> dict[str, torch.Tensor]:
    """The tensors of a padded or packed batch that the model takes."""
    keys = ("input_ids", "position_ids") if "position_ids" in batch else ("input_ids", "attention_mask")
    return {k: batch[k] for k in keys}
