"""Export a QAT (fake-quantized) model as a real low-bit compressed-tensors checkpoint.

:func:`export_qat` replaces every :class:`~reasonlab.quant.fakequant.FakeQuantLinear`
of a copy of the model by a plain ``nn.Linear`` holding the dequantized weight,
attaches compressed-tensors quantization with the QAT layer's *own* scales and
zero-points (``apply_quantization_config`` with the scheme's config, status
``FROZEN``), packs the integer codes (``pack-quantized``: ``weight_packed`` int32,
``weight_scale``, ``weight_zero_point``, ``weight_shape``) and writes the checkpoint
atomically (temporary sibling directory, then ``rename``).  Stock
``transformers.AutoModelForCausalLM.from_pretrained(out_dir)`` loads it (with
compressed-tensors installed) through the ``quantization_config`` in ``config.json``.

Tolerance.  The fake quantizer uses compressed-tensors' exact arithmetic, so the
integer codes written are the ones the QAT forward used and the reloaded weights
``(q - z) * s`` are bitwise the QAT model's dequantized weights; the logits then agree
to float32 round-off.  :data:`EXPORT_LOGIT_TOL` = 1e-4 relative to the logit scale
(``max|Δ| <= 1e-4 * max(1, max|logits|)``) is the contract checked by
:func:`~reasonlab.quant.packed.max_logit_diff` users and the tests; the measured difference on the tiny test
models is 0 (bitwise equal).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from compressed_tensors.quantization import QuantizationStatus, apply_quantization_config
from torch import nn

from .fakequant import fakequant_modules
from .packed import save_compressed
from .scheme import QuantScheme

__all__ = ["EXPORT_LOGIT_TOL", "export_qat", "materialize_quantized"]

#: Allowed ``max|logits_reloaded - logits_qat| / max(1, max|logits_qat|)`` after export.
EXPORT_LOGIT_TOL = 1e-4


@torch.no_grad()
def materialize_quantized(model: nn.Module, scheme: QuantScheme) -> nn.Module:
    """Deep copy of a QAT model in compressed-tensors form (no ``FakeQuantLinear`` left).

    Each ``FakeQuantLinear`` becomes an ``nn.Linear`` with the dequantized weight and
    compressed-tensors ``weight_scale`` / ``weight_zero_point`` (status ``FROZEN``),
    i.e. the same in-memory form as a PTQ model from llm-compressor.  The input model
    is not modified.

    Raises:
        ValueError: if ``model`` has no ``FakeQuantLinear``, if a layer was prepared with
            another grid (bits / group size / symmetry), or if ``scheme``'s targets/ignore
            select other layers than the QAT model fake-quantizes.
    """
    exported = copy.deepcopy(model)
    layers = list(fakequant_modules(exported))
    if not layers:
        raise ValueError("model has no FakeQuantLinear layers; call prepare_qat first")
    qparams: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, layer in layers:
        grid = (layer.scheme.bits, layer.scheme.group_size, layer.scheme.symmetric)
        if grid != (scheme.bits, scheme.group_size, scheme.symmetric):
            raise ValueError(
                f"layer {name!r} was prepared with scheme {layer.scheme.name}, "
                f"export asked for scheme {scheme.name}"
            )
        qparams[name] = layer.export_qparams()
        exported.set_submodule(name, layer.to_linear())

    apply_quantization_config(
        exported, scheme.quantization_config(status=QuantizationStatus.FROZEN), show_progress=False
    )
    quantized = {n for n, m in exported.named_modules() if hasattr(m, "quantization_scheme")}
    if quantized != set(qparams):
        raise ValueError(
            "scheme targets/ignore select different layers than the QAT model's "
            f"FakeQuantLinear layers: only selected by scheme {sorted(quantized - set(qparams))[:5]}, "
            f"only fake-quantized {sorted(set(qparams) - quantized)[:5]}"
        )
    for name, (scale, zero_point) in qparams.items():
        module = exported.get_submodule(name)
        module.weight_scale.data.copy_(scale.to(module.weight_scale.dtype))
        module.weight_zero_point.data.copy_(zero_point.to(module.weight_zero_point.dtype))
    return exported


def export_qat(
    model_with_fakequant: nn.Module,
    tokenizer: Any,
    scheme: QuantScheme,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model_with_fakequant`` as a pack-quantized compressed-tensors checkpoint.

    Args:
        model_with_fakequant: model prepared by
            :func:`~reasonlab.quant.fakequant.prepare_qat` (and trained); not modified.
        tokenizer: saved alongside (may be ``None``).
        scheme: the scheme the model was prepared with.
        out_dir: destination directory (written atomically).
        metadata: optional JSON-serialisable dict stored as ``reasonlab_quant.json``
            (``scheme`` is added automatically).
        overwrite: replace an existing ``out_dir``.

    Returns:
        the checkpoint directory.  Reloading it with ``from_pretrained`` reproduces the
        QAT model's logits within :data:`EXPORT_LOGIT_TOL` (see module docstring).
    """
    exported = materialize_quantized(model_with_fakequant, scheme)
    meta = {"scheme": scheme.to_dict(), **dict(metadata or {})}
    return save_compressed(exported, tokenizer, out_dir, metadata=meta, overwrite=overwrite)
