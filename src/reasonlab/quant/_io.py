"""Atomic writing of compressed-tensors (pack-quantized) checkpoints.

llm-compressor's wrapped ``model.save_pretrained(dir, save_compressed=True)`` runs
``ModelCompressor.from_pretrained_model(model, fmt).compress_model(model)``, the stock
``PreTrainedModel.save_pretrained`` and ``ModelCompressor.update_config(dir)``, plus
extras keyed on ``config._name_or_path`` (re-saving the original config, copying the
recipe and remote-code files, which try the Hugging Face hub when that path is not a
local directory, e.g. for a randomly initialised model).  :func:`save_compressed` calls
the same three compressed-tensors / transformers steps directly, so the on-disk format
is identical, nothing reaches for the hub, and the caller's model is never mutated (the
caller passes a copy).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compressed_tensors.compressors import ModelCompressor
from torch import nn
from transformers import PreTrainedModel

from reasonlab.quant.scheme import PACKED_FORMAT

__all__ = ["METADATA_FILE", "save_compressed", "atomic_replace_dir"]

#: Extra file with reasonlab metadata (scheme, method, ...) written next to config.json.
METADATA_FILE = "reasonlab_quant.json"


def atomic_replace_dir(tmp_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished ``tmp_dir`` to ``out_dir`` (same filesystem) via ``rename``.

    An existing ``out_dir`` is moved aside first and deleted only after the new
    directory is in place, so readers never see a half-written checkpoint.
    """
    if out_dir.exists():
        if not overwrite:
            raise FileExistsError(f"out_dir {str(out_dir)!r} exists (pass overwrite=True)")
        backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rename(out_dir, backup / out_dir.name)
        os.rename(tmp_dir, out_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(tmp_dir, out_dir)


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
        atomic_replace_dir(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
