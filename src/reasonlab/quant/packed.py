"""Packed low-bit checkpoints on disk: writing them, reading them back, measuring them.

* :func:`save_compressed` writes a model whose quantized layers carry compressed-tensors state as a
  ``pack-quantized`` checkpoint, atomically. llm-compressor's wrapped
  ``model.save_pretrained(dir, save_compressed=True)`` runs
  ``ModelCompressor.from_pretrained_model(model, fmt).compress_model(model)``, the stock
  ``PreTrainedModel.save_pretrained`` and ``ModelCompressor.update_config(dir)``, plus extras keyed on
  ``config._name_or_path`` (re-saving the original config, copying the recipe and remote-code files,
  which try the Hugging Face hub when that path is not a local directory, e.g. for a randomly
  initialised model). :func:`save_compressed` calls the same three compressed-tensors / transformers
  steps directly, so the on-disk format is identical, nothing reaches for the hub, and the caller's
  model is never mutated (the caller passes a copy).
* :func:`dequantized_copy` a plain full-precision copy holding a quantized model's grid weights
  (numerically the quantized model, without fake quantization at every decoding step);
* :func:`check_reload` a reloaded checkpoint must reproduce the logits of the model that wrote it;
* :func:`weights_bytes` / :func:`dir_size_bytes` on-disk size.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from compressed_tensors.compressors import ModelCompressor
from torch import nn
from transformers import PreTrainedModel

from ..io import replace_dir
from .fakequant import fake_quant
from .qparams import read_quant_params
from .scheme import PACKED_FORMAT, QuantScheme

__all__ = ["METADATA_FILE", "RELOAD_TOL", "check_reload", "dequantized_copy", "dir_size_bytes", "max_logit_diff",
           "save_compressed", "weights_bytes"]

#: Extra file with reasonlab metadata (scheme, method, ...) written next to config.json.
METADATA_FILE = "reasonlab_quant.json"

#: Logit agreement (relative) required between a reloaded checkpoint and the model that wrote it.
RELOAD_TOL = 1e-3


def save_compressed(
    model: nn.Module,
    tokenizer: Any,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Compress ``model`` in place to pack-quantized form and write it atomically.

    ``model`` must be a ``PreTrainedModel`` whose quantized layers carry
    compressed-tensors state (``FROZEN`` or ``DECOMPRESSED``); it is left compressed,
    so pass a copy.  ``tokenizer`` (may be ``None``) is saved alongside, ``metadata``
    (JSON-serialisable) goes to :data:`METADATA_FILE`.

    Returns:
        the final checkpoint directory.
    """
    if not isinstance(model, PreTrainedModel):
        raise ValueError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    out = Path(out_dir).resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"out_dir {str(out)!r} exists (pass overwrite=True)")
    out.parent.mkdir(parents=True, exist_ok=True)

    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=PACKED_FORMAT)
    if compressor.quantization_config is None:
        raise ValueError("model has no compressed-tensors quantized layers to pack")
    compressor.compress_model(model)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        # the class method: an instance-level save_pretrained (llm-compressor wraps it
        # and keeps a weak reference to the *original* model) must not be used
        PreTrainedModel.save_pretrained(model, str(tmp))
        compressor.update_config(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        if metadata is not None:
            (tmp / METADATA_FILE).write_text(json.dumps(dict(metadata), indent=2, sort_keys=True))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@torch.no_grad()
def dequantized_copy(template: torch.nn.Module, qmodel: torch.nn.Module) -> torch.nn.Module:
    """A plain copy of ``template`` (the FP model) holding ``qmodel``'s quantized weights.

    ``qmodel`` is a PTQ model (llm-compressor, in memory), a reloaded compressed-tensors
    checkpoint (:func:`~reasonlab.quant.qparams.load_quantized`) or a QAT model
    (:func:`~reasonlab.quant.fakequant.prepare_qat`): every weight-quantized linear gets its
    dequantized grid weight ``(q - z) * s`` (bitwise what ``qmodel`` uses in its forward),
    every other parameter (embeddings, norms rescaled by AWQ, ``lm_head``) is copied.
    """
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


def dir_size_bytes(path: str | os.PathLike[str]) -> int:
    """Total size in bytes of the regular files under ``path`` (symlinks not followed)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path {str(root)!r} is not a directory")
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            file = Path(dirpath) / filename
            if not file.is_symlink():
                total += file.stat().st_size
    return total


@torch.no_grad()
def max_logit_diff(model_a: nn.Module, model_b: nn.Module, input_ids: torch.Tensor) -> float:
    """``max|logits_a - logits_b| / max(1, max|logits_a|)`` on ``input_ids`` (put both in eval mode)."""
    logits_a = model_a(input_ids=input_ids).logits.float()
    logits_b = model_b(input_ids=input_ids).logits.float()
    scale = max(1.0, float(logits_a.abs().max()))
    return float((logits_a - logits_b).abs().max()) / scale


def check_reload(reference: nn.Module, candidate: nn.Module, tokenizer, text: str, what: str) -> float:
    """:func:`max_logit_diff` of ``candidate`` (a reloaded checkpoint) against ``reference`` (the model that
    wrote it) on the first 64 tokens of ``text``; raises naming ``what`` above :data:`RELOAD_TOL`."""
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"][:64]])
    reference.eval()
    diff = max_logit_diff(reference, candidate, ids)
    if diff > RELOAD_TOL:
        raise RuntimeError(f"{what}: reloaded checkpoint disagrees with the model that wrote it "
                           f"(max relative logit difference {diff:.2e} > {RELOAD_TOL})")
    return diff
