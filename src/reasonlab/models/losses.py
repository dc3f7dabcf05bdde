"""The losses of every training in the repository (one module).

Per-token losses for the training loop (pretraining, students, oracle modes, QAT): cross-entropy
(SFT), Dynamic Fine-Tuning (DFT) and the knowledge-distillation family; and the pairwise
Bradley-Terry loss of the reward model (:func:`bt_loss`).

Every per-token loss has the signature ``fn(logits, targets, teacher_logits) -> loss`` with
``logits``/``teacher_logits`` ``[B, T, V]`` (already aligned so that position ``t``
predicts ``targets[:, t]``), ``targets`` ``[B, T]`` (``-100`` = ignore) and returns an
unreduced float32 ``[B, T]`` tensor; the training loop masks and averages.

* :func:`ce_loss`: token cross-entropy; 0 where ``targets == -100``.
* :func:`dft_loss`: Dynamic Fine-Tuning, ``sg(p_t) * (-log p_t)`` (the paradox paper's DFT).
* :func:`kd_forward_kl`: ``T^2 * KL(p_teacher^T || p_student^T)`` (Hinton et al.).
* :func:`kd_reverse_kl`: ``T^2 * KL(p_student^T || p_teacher^T)`` (mode seeking).
* :func:`kd_jsd`: generalised Jensen-Shannon divergence (as in GKD, Agarwal et al.
  2024): with ``M = beta * p_teacher + (1 - beta) * p_student``,
  ``T^2 * (beta * KL(p_teacher || M) + (1 - beta) * KL(p_student || M))``;
  ``beta = 0.5`` is the symmetric JSD, bounded by ``T^2 * log 2``.
* :func:`mixed`: weighted sum of the above, e.g. ``mixed({"ce": 0.5, "forward_kl": 0.5})``.

``p^T = softmax(logits / T)``; the ``T^2`` factor keeps gradient magnitudes comparable
across temperatures.  KD terms do not look at ``targets`` (the loop's mask decides
which positions count) and require ``teacher_logits``.  Computation is in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "LossFn",
    "LOSS_NAMES",
    "bt_loss",
    "ce_loss",
    "dft_loss",
    "objective_loss",
    "kd_forward_kl",
    "kd_reverse_kl",
    "kd_jsd",
    "mixed",
    "build_loss",
]

IGNORE_INDEX = -100

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]

#: Names accepted by :func:`mixed` and :func:`build_loss`.
LOSS_NAMES: tuple[str, ...] = ("ce", "forward_kl", "reverse_kl", "jsd")


def _check_inputs(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None) -> None:
    if logits.ndim != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    if tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"targets must be [B, T] = {tuple(logits.shape[:2])}, got {tuple(targets.shape)}")
    if teacher_logits is not None and teacher_logits.shape != logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of logits {tuple(logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )


def _require_teacher(teacher_logits: torch.Tensor | None, name: str) -> torch.Tensor:
    if teacher_logits is None:
        raise ValueError(f"{name} is a distillation loss and needs teacher_logits (got None)")
    return teacher_logits


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number, got {temperature!r}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be positive and finite, got {temperature}")
    return float(temperature)


def _log_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.log_softmax(logits.float() / temperature, dim=-1)


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` summed over the last dim, from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def ce_loss(
    logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-token cross-entropy ``[B, T]``; ``teacher_logits`` is ignored; 0 at ``-100`` targets."""
    _check_inputs(logits, targets, teacher_logits)
    batch, length, vocab = logits.shape
    loss = F.cross_entropy(
        logits.float().reshape(batch * length, vocab),
        targets.reshape(batch * length).long(),
        reduction="none",
        ignore_index=IGNORE_INDEX,
    )
    return loss.view(batch, length)


def dft_loss(
    logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """Dynamic Fine-Tuning: cross-entropy weighted by the stop-gradient of the token's own probability.

    ``loss_t = sg(p_t) * (-log p_t)``: with every ``p_t = 1`` the weights are 1 and
    the gradient is ``sg(p_t)`` times the cross-entropy gradient.
    """
    ce = ce_loss(logits, targets)
    return torch.exp(-ce).detach() * ce


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry pairwise loss per pair, ``-logsigmoid(r_chosen - r_rejected)`` (the reward model's)."""
    return -F.logsigmoid(r_chosen - r_rejected)


def kd_forward_kl(temperature: float = 1.0) -> LossFn:
    """Forward KL ``T^2 * KL(teacher || student)`` per token (mean-seeking KD)."""
    temp = _check_temperature(temperature)

    def loss_fn(
        logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_inputs(logits, targets, teacher_logits)
        teacher = _require_teacher(teacher_logits, "kd_forward_kl")
        return _kl(_log_probs(teacher, temp), _log_probs(logits, temp)) * temp**2

    loss_fn.__name__ = f"kd_forward_kl(T={temp:g})"
    return loss_fn


def kd_reverse_kl(temperature: float = 1.0) -> LossFn:
    """Reverse KL ``T^2 * KL(student || teacher)`` per token (mode-seeking KD)."""
    temp = _check_temperature(temperature)

    def loss_fn(
        logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_inputs(logits, targets, teacher_logits)
        teacher = _require_teacher(teacher_logits, "kd_reverse_kl")
        return _kl(_log_probs(logits, temp), _log_probs(teacher, temp)) * temp**2

    loss_fn.__name__ = f"kd_reverse_kl(T={temp:g})"
    return loss_fn


def kd_jsd(beta: float = 0.5, temperature: float = 1.0) -> LossFn:
    """Generalised JSD with teacher weight ``beta`` in ``(0, 1)`` (see module docstring).

    At the limits the divergence vanishes identically, so ``beta`` must lie strictly
    inside ``(0, 1)``; use :func:`kd_forward_kl` / :func:`kd_reverse_kl` for the KL ends.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be a number strictly between 0 and 1, got {beta!r}")
    temp = _check_temperature(temperature)
    log_beta, log_one_minus_beta = math.log(beta), math.log1p(-beta)

    def loss_fn(
        logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_inputs(logits, targets, teacher_logits)
        teacher = _require_teacher(teacher_logits, "kd_jsd")
        log_p_teacher = _log_probs(teacher, temp)
        log_p_student = _log_probs(logits, temp)
        log_mixture = torch.logaddexp(log_p_teacher + log_beta, log_p_student + log_one_minus_beta)
        jsd = beta * _kl(log_p_teacher, log_mixture) + (1.0 - beta) * _kl(log_p_student, log_mixture)
        return jsd * temp**2

    loss_fn.__name__ = f"kd_jsd(beta={beta:g},T={temp:g})"
    return loss_fn


def _term(name: str, temperature: float, beta: float) -> LossFn:
    if name == "ce":
        return ce_loss
    if name == "forward_kl":
        return kd_forward_kl(temperature)
    if name == "reverse_kl":
        return kd_reverse_kl(temperature)
    if name == "jsd":
        return kd_jsd(beta, temperature)
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSS_NAMES}")


def mixed(weights: Mapping[str, float], *, temperature: float = 1.0, beta: float = 0.5) -> LossFn:
    """Weighted sum ``sum_k weights[k] * loss_k`` of losses named in :data:`LOSS_NAMES`.

    Example: ``mixed({"ce": 0.3, "forward_kl": 0.7}, temperature=2.0)``.  ``temperature``
    applies to every KD term, ``beta`` to ``"jsd"``.  Weights must be finite and
    non-negative with a positive sum; zero-weight terms are skipped.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"weights must be a non-empty mapping of loss name to weight, got {weights!r}")
    terms: list[tuple[float, LossFn]] = []
    for name, weight in weights.items():
        if name not in LOSS_NAMES:
            raise ValueError(f"unknown loss {name!r} in weights; expected one of {LOSS_NAMES}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(f"weights[{name!r}] must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights[{name!r}] must be finite and >= 0, got {weight}")
        if weight > 0:
            terms.append((float(weight), _term(name, temperature, beta)))
    if not terms:
        raise ValueError("weights must contain at least one positive weight")

    def loss_fn(
        logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        total = terms[0][0] * terms[0][1](logits, targets, teacher_logits)
        for weight, term in terms[1:]:
            total = total + weight * term(logits, targets, teacher_logits)
        return total

    loss_fn.__name__ = "mixed(" + ",".join(f"{k}={v:g}" for k, v in weights.items()) + ")"
    return loss_fn


def build_loss(name: str, **params: Any) -> LossFn:
    """Loss from a config entry: ``name`` in :data:`LOSS_NAMES` or ``"mixed"``.

    ``params``: ``temperature`` (KD terms), ``beta`` (``"jsd"``), ``weights``
    (``"mixed"``, required there).  Unknown parameters raise ``ValueError``.
    """
    allowed = {
        "ce": set(),
        "forward_kl": {"temperature"},
        "reverse_kl": {"temperature"},
        "jsd": {"beta", "temperature"},
        "mixed": {"weights", "temperature", "beta"},
    }
    if name not in allowed:
        raise ValueError(f"unknown loss {name!r}; expected one of {(*LOSS_NAMES, 'mixed')}")
    unknown = set(params) - allowed[name]
    if unknown:
        raise ValueError(f"loss {name!r} does not take parameter(s) {sorted(unknown)}")
    if name == "mixed":
        if "weights" not in params:
            raise ValueError("loss 'mixed' requires a 'weights' parameter")
        return mixed(
            params["weights"],
            temperature=params.get("temperature", 1.0),
            beta=params.get("beta", 0.5),
        )
    return _term(name, params.get("temperature", 1.0), params.get("beta", 0.5))


def objective_loss(objective: str, kd: Any = None) -> LossFn:
    """The per-token loss of a training objective: ``sft`` (CE), ``dft``, or ``kd`` built from ``kd``
    (a :class:`reasonlab.quant.config.KDConfig`: ``kind``, ``temperature``, ``beta``, ``ce_weight``)."""
    if objective == "sft":
        return ce_loss
    if objective == "dft":
        return dft_loss
    if objective != "kd":
        raise ValueError(f"objective must be sft, dft or kd, got {objective!r}")
    if kd is None:
        raise ValueError("objective kd needs its KD settings (quant.qat.kd)")
    params: dict[str, Any] = {"temperature": kd.temperature}
    if kd.kind == "jsd":
        params["beta"] = kd.beta
    if kd.ce_weight == 0:
        return build_loss(kd.kind, **params)
    return build_loss("mixed", weights={"ce": kd.ce_weight, kd.kind: 1.0 - kd.ce_weight}, **params)
