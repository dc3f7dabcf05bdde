"""One QAT run: a fake-quantized student from its initialisation, and the loss.

* :func:`qat_student` the FP model prepared for QAT from ``fp`` (min-max scales) or a PTQ checkpoint;
* :func:`qat_loss` the per-token loss of an objective (``sft``: CE on the traces; ``kd``: divergence to
  the FP teacher's token distributions, as configured in ``quant.qat.kd``).
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..models.losses import LossFn, objective_loss
from .config import QuantConfig
from .fakequant import prepare_qat
from .scheme import QuantScheme


def qat_student(fp, scheme: QuantScheme, ptq_path: str | Path | None, learnable_scales: bool = False):
    """A trainable copy of ``fp`` with fake-quantized linears: from ``fp`` itself (``ptq_path`` ``None``:
    min-max scales, i.e. the RTN grid) or from a PTQ checkpoint (its weights, scales and zero-points)."""
    student = copy.deepcopy(fp)
    student.requires_grad_(True)
    return prepare_qat(student, scheme, "fp" if ptq_path is None else "ptq", ptq_model=ptq_path,
                       learnable_scales=learnable_scales)


def qat_loss(qc: QuantConfig, objective: str) -> LossFn:
    """Per-token loss of a QAT objective: ``sft`` = CE; ``kd`` = the configured divergence (mixed with CE)."""
    return objective_loss(objective, qc.qat.kd)
