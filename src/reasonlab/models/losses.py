"""Per-token losses for the training loop: ``fn(logits[B,T,V], targets[B,T], teacher_logits|None) -> [B,T]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ce_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Token cross-entropy (SFT)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction="none").view(targets.shape)


def dft_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Dynamic Fine-Tuning: cross-entropy weighted by the stop-gradient of the token's own probability.

    ``loss_t = sg(p_t) * (-log p_t)``: with every ``p_t = 1`` the weights are 1 and
    the gradient is ``sg(p_t)`` times the cross-entropy gradient.
    """
    ce = ce_loss(logits, targets)
    return torch.exp(-ce).detach() * ce


LOSSES = {"sft": ce_loss, "dft": dft_loss}
