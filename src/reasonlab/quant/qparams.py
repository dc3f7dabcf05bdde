"""The quantization parameters (scales, zero-points) attached to a quantized model's layers.

After llm-compressor's ``oneshot`` (and after loading a compressed-tensors checkpoint
with ``from_pretrained``) every targeted ``nn.Linear`` carries ``weight`` plus the
``weight_scale`` / ``weight_zero_point`` parameters and a ``quantization_scheme``
attribute.  After :func:`reasonlab.quant.fakequant.prepare_qat` every targeted layer is
a :class:`~reasonlab.quant.fakequant.FakeQuantLinear` carrying the same tensors.
:func:`read_quant_params` reads either kind into plain :class:`QuantParams`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from compressed_tensors.quantization import QuantizationArgs, QuantizationStatus
from torch import nn

__all__ = ["QuantParams", "read_quant_params", "load_quantized"]


@dataclass(frozen=True)
class QuantParams:
    """Quantization state of one linear layer (all tensors detached copies).

    Attributes:
        weight: the weight stored on the layer, ``[out, in]``.  For RTN/AWQ PTQ models
            and QAT layers this is the latent full-precision weight (fake-quantized on
            the fly in ``forward``); for GPTQ models and loaded checkpoints it already
            lies on the quantization grid.
        scale: per-group scales, ``[out, in // group_size]``.
        zero_point: per-group integer zero-points (``torch.int8``), same shape as
            ``scale``; all zeros for symmetric schemes.
        args: the compressed-tensors weight ``QuantizationArgs`` describing the grid
            (for QAT layers: ``scheme.quantization_args()``).
    """

    weight: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    args: QuantizationArgs | None = None


def _ct_params(name: str, module: nn.Module) -> QuantParams:
    status = getattr(module, "quantization_status", None)
    if status == QuantizationStatus.COMPRESSED or not hasattr(module, "weight"):
        raise ValueError(
            f"layer {name!r} is still packed (status COMPRESSED; a plain from_pretrained "
            "only unpacks on the first forward); load the checkpoint with load_quantized()"
        )
    if status is not None and status < QuantizationStatus.FROZEN:
        raise ValueError(
            f"layer {name!r} has quantization_status={status}; its scales are not "
            "calibrated yet (run PTQ to completion first)"
        )
    args: QuantizationArgs = module.quantization_scheme.weights
    scale = module.weight_scale.detach().clone()
    zero_point = getattr(module, "weight_zero_point", None)
    if zero_point is None:
        zero_point = torch.zeros(scale.shape, dtype=torch.int8, device=scale.device)
    zero_point = zero_point.detach().to(torch.int8).reshape(scale.shape).clone()
    return QuantParams(module.weight.detach().clone(), scale, zero_point, args)


def read_quant_params(model: nn.Module) -> dict[str, QuantParams]:
    """Quantization parameters of every weight-quantized linear layer of ``model``.

    Works on models quantized in memory by llm-compressor (status ``FROZEN``), on
    compressed-tensors checkpoints loaded with ``from_pretrained`` (status
    ``DECOMPRESSED``) and on QAT models prepared by
    :func:`reasonlab.quant.fakequant.prepare_qat`.

    Returns:
        ``{module_name: QuantParams}`` in ``named_modules`` order (empty if the model
        is not quantized).

    Raises:
        ValueError: if a layer is still packed (``COMPRESSED``) or not calibrated.
    """
    out: dict[str, QuantParams] = {}
    for name, module in model.named_modules():
        if callable(getattr(module, "quant_params", None)):  # a FakeQuantLinear (QAT) reports its own
            out[name] = module.quant_params()
            continue
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is None or getattr(scheme, "weights", None) is None:
            continue
        out[name] = _ct_params(name, module)
    return out


def load_quantized(path: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """Load a compressed-tensors checkpoint with ``from_pretrained``, unpacked at load time.

    A plain ``AutoModelForCausalLM.from_pretrained(path)`` keeps the packed layers
    (``COMPRESSED``) until the first forward; ``CompressedTensorsConfig(dequantize=True)``
    unpacks them immediately, leaving each quantized linear with the dequantized
    ``weight``, ``weight_scale`` and ``weight_zero_point`` (status ``DECOMPRESSED``).
    ``kwargs`` are passed to ``from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(f"path {path!r} is not a checkpoint directory (no config.json)")
    # transformers warns that only the loading attributes of the passed config are used
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You passed `quantization_config`")
        return AutoModelForCausalLM.from_pretrained(
            path, quantization_config=CompressedTensorsConfig(dequantize=True), **kwargs
        )
