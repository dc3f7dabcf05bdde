"""Low-bit weight quantization for tiny causal LMs: PTQ, QAT (fake quant + KD losses), export.

Modules:

* :mod:`~reasonlab.quant.scheme`: :class:`QuantScheme` and its compressed-tensors config.
* :mod:`~reasonlab.quant.ptq`: RTN / GPTQ / AWQ with llm-compressor, packed saving.
* :mod:`~reasonlab.quant.fakequant`: STE fake quantization matching compressed-tensors,
  :func:`prepare_qat`.
* :mod:`~reasonlab.quant.losses`: per-token CE and KD losses.
* :mod:`~reasonlab.quant.export`: QAT model -> real packed low-bit checkpoint.

``llmcompressor`` is imported lazily (only when PTQ runs).
"""

from reasonlab.quant.export import EXPORT_LOGIT_TOL, dir_size_bytes, export_qat, materialize_quantized
from reasonlab.quant.fakequant import (
    FakeQuantLinear,
    fake_quant,
    fakequant_modules,
    minmax_qparams,
    prepare_qat,
)
from reasonlab.quant.losses import build_loss, ce_loss, kd_forward_kl, kd_jsd, kd_reverse_kl, mixed
from reasonlab.quant.params import QuantParams, load_quantized, read_quant_params
from reasonlab.quant.ptq import PTQ_METHODS, run_ptq, save_quantized
from reasonlab.quant.scheme import QuantScheme, targeted_modules

__all__ = [
    "EXPORT_LOGIT_TOL",
    "PTQ_METHODS",
    "FakeQuantLinear",
    "QuantParams",
    "QuantScheme",
    "build_loss",
    "ce_loss",
    "dir_size_bytes",
    "export_qat",
    "fake_quant",
    "fakequant_modules",
    "kd_forward_kl",
    "kd_jsd",
    "kd_reverse_kl",
    "load_quantized",
    "materialize_quantized",
    "minmax_qparams",
    "mixed",
    "prepare_qat",
    "read_quant_params",
    "run_ptq",
    "save_quantized",
    "targeted_modules",
]
