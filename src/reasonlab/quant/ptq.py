"""Post-training quantization (RTN, GPTQ, AWQ) with llm-compressor's ``oneshot``.

* ``"rtn"``: ``QuantizationModifier`` (min-max scales, round to nearest; data-free).
* ``"gptq"``: ``GPTQModifier`` (Hessian-based error compensation; its weights end on
  the grid).
* ``"awq"``: llm-compressor's ``AWQModifier`` (activation-aware channel smoothing, a
  transform that rescales norms/linears) followed by the same ``QuantizationModifier``.
  The smooth/balance mappings come from llm-compressor's registry
  (``LlamaForCausalLM``, ``Qwen2ForCausalLM``, ``Qwen3ForCausalLM`` are registered);
  :func:`awq_mappings` raises ``ValueError`` naming the architecture when no mapping
  resolves on the model.  With grouped-query attention the ``v_proj -> o_proj``
  mapping is skipped by llm-compressor (shape mismatch), the other three are used.

All methods use :class:`~reasonlab.quant.scheme.QuantScheme`'s compressed-tensors
config, so the result is a model whose targeted linears carry ``weight``,
``weight_scale`` and ``weight_zero_point`` (status ``FROZEN``) and fake-quantize their
weight in ``forward``.  Read them with :func:`~reasonlab.quant.qparams.read_quant_params`, save with
:func:`save_quantized`.

CPU notes (llm-compressor 0.14): AWQ's grid search calls ``Tensor.pin_memory()`` on
its activation cache, which raises on a machine without an accelerator; pinning only
speeds up host-to-device copies, so :func:`run_ptq` turns it into a no-op while AWQ
runs on a CPU-only machine.  ``oneshot`` also re-reads ``config.json`` from
``config._name_or_path``; for models built from a config (no such directory) the
config is written to a temporary directory for the duration of the call.  With
``LLM_COMPRESSOR_LOG_DISABLED=true`` llm-compressor never registers loguru's ``METRIC``
level that GPTQ logs to, so :func:`run_ptq` registers it.

Measured wall time of :func:`run_ptq` (CPU, 1 intra-op thread, excluding the one-off
``import llmcompressor`` of ~5 s):

* Llama hidden 64, 2 layers, 8 calibration sequences of <= 32 tokens, 4-bit g32:
  RTN ~0.03 s, GPTQ ~0.2 s, AWQ ~0.3 s;
* Llama hidden 128, 4 layers, 16 sequences of 64 tokens (``benchmarks/bench_quant.py``),
  bits 4/3/2: RTN 0.03-0.07 s, GPTQ 0.6-0.8 s, AWQ 1.7-2.2 s.

On a 2-core machine shared with other jobs, 2 intra-op threads made the same tiny AWQ run
take 57 s instead of 0.3 s (OpenMP barrier stalls), so set ``torch.set_num_threads(1)``
for tiny models on such machines.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from unittest import mock

import torch
from torch import nn

from .config import PTQ_METHODS
from .packed import save_compressed
from .scheme import QuantScheme, targeted_modules

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["PTQ_METHODS", "PTQMethod", "awq_mappings", "build_calibration_dataset", "ptq_recipe", "run_ptq",
           "save_quantized"]

logger = logging.getLogger(__name__)

PTQMethod = Literal[PTQ_METHODS]


def build_calibration_dataset(tokenizer: Any, calib_texts: Sequence[str], max_seq_len: int) -> Dataset:
    """Tokenize ``calib_texts`` (truncated to ``max_seq_len`` tokens) into a ``datasets.Dataset``.

    Columns ``input_ids`` and ``attention_mask``; one row per non-empty text.  llm-compressor
    detects the ``input_ids`` column and uses the rows as-is.
    """
    from datasets import Dataset

    if isinstance(calib_texts, str) or not isinstance(calib_texts, Sequence):
        raise ValueError("calib_texts must be a list of strings")
    if not calib_texts:
        raise ValueError("calib_texts must not be empty")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise ValueError(f"max_seq_len must be a positive int, got {max_seq_len!r}")
    input_ids: list[list[int]] = []
    for i, text in enumerate(calib_texts):
        if not isinstance(text, str):
            raise ValueError(f"calib_texts[{i}] is {type(text).__name__}, expected str")
        ids = tokenizer(text, truncation=True, max_length=max_seq_len)["input_ids"]
        if ids:
            input_ids.append(list(ids))
    if not input_ids:
        raise ValueError("calib_texts tokenized to no tokens at all")
    return Dataset.from_dict(
        {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids]}
    )


def awq_mappings(model: nn.Module) -> list[Any]:
    """AWQ smooth/balance mappings for ``model`` (llm-compressor ``AWQMapping`` s).

    Uses llm-compressor's registry for the architecture (falling back to its
    Llama-style defaults) and keeps the mappings whose smooth layer and every balance
    layer exist in ``model``.

    Raises:
        ValueError: naming the architecture if no mapping resolves.
    """
    from compressed_tensors.utils import match_named_modules
    from llmcompressor.modifiers.transform.awq import get_layer_mappings_from_model

    arch = type(model).__name__
    usable = []
    for mapping in get_layer_mappings_from_model(model):
        patterns = [mapping.smooth_layer, *mapping.balance_layers]
        if all(next(match_named_modules(model, [p]), None) is not None for p in patterns):
            usable.append(mapping)
    if not usable:
        raise ValueError(
            f"AWQ is not supported for architecture {arch!r}: none of llm-compressor's AWQ "
            "smooth/balance mappings match its module names (supported here: "
            "LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)"
        )
    return usable


def ptq_recipe(
    method: str, scheme: QuantScheme, model: nn.Module, method_kwargs: Mapping[str, Any] | None = None
) -> list[Any]:
    """llm-compressor modifiers implementing ``method`` with ``scheme``.

    ``method_kwargs`` go to the method's own modifier (``GPTQModifier``: e.g.
    ``block_size``, ``dampening_frac``, ``actorder``; ``AWQModifier``: e.g. ``n_grid``,
    ``duo_scaling``); none are accepted for RTN.
    """
    from llmcompressor.modifiers.gptq import GPTQModifier
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier

    kwargs = dict(method_kwargs or {})
    if method == "rtn":
        if kwargs:
            raise ValueError(f"method_kwargs are not used by method='rtn', got {sorted(kwargs)}")
        return [QuantizationModifier(**scheme.modifier_kwargs())]
    if method == "gptq":
        return [GPTQModifier(**scheme.modifier_kwargs(), **kwargs)]
    if method == "awq":
        kwargs.setdefault("mappings", awq_mappings(model))
        return [AWQModifier(**kwargs), QuantizationModifier(**scheme.modifier_kwargs())]
    raise ValueError(f"method must be one of {PTQ_METHODS}, got {method!r}")


@contextlib.contextmanager
def _resolvable_config(model: nn.Module) -> Iterator[None]:
    """Make ``model.config._name_or_path`` a directory holding ``config.json`` (oneshot reads it)."""
    config = model.config
    original = getattr(config, "_name_or_path", "") or ""
    if original and os.path.isfile(os.path.join(original, "config.json")):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="reasonlab-ptq-config-") as tmp:
        config.save_pretrained(tmp)
        config._name_or_path = tmp
        try:
            yield
        finally:
            config._name_or_path = original


def _ensure_metric_log_level() -> None:
    """Register loguru's ``METRIC`` level if llm-compressor did not.

    llm-compressor adds the level when it configures logging, but not when logging is
    disabled (``LLM_COMPRESSOR_LOG_DISABLED=true``), and GPTQ then fails logging its metrics
    with ``ValueError: Level 'METRIC' does not exist``.
    """
    from loguru import logger as loguru_logger

    try:
        loguru_logger.level("METRIC")
    except ValueError:
        loguru_logger.level("METRIC", no=38)


@contextlib.contextmanager
def _cpu_pin_memory_workaround() -> Iterator[None]:
    """No-op ``IntermediatesCache.pin_memory`` when there is no accelerator (see module doc)."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator.is_available() if accelerator is not None else torch.cuda.is_available():
        yield
        return
    from llmcompressor.pipelines.cache import IntermediatesCache

    def _no_pin(self: Any, batch_index: int, input_names: list[str] | None = None) -> None:
        return None

    with mock.patch.object(IntermediatesCache, "pin_memory", _no_pin):
        yield


def run_ptq(
    model: nn.Module,
    tokenizer: Any,
    method: PTQMethod,
    scheme: QuantScheme,
    calib_texts: Sequence[str],
    max_seq_len: int,
    seed: int = 0,
    *,
    method_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Quantize ``model`` in place with RTN / GPTQ / AWQ and return it.

    Args:
        model: full-precision ``PreTrainedModel`` (Llama / Qwen2 / Qwen3 causal LM).
            Modified in place; ``copy.deepcopy`` it first to keep the FP model.
        tokenizer: its tokenizer (used for the calibration set).
        method: ``"rtn"``, ``"gptq"`` or ``"awq"``.
        scheme: weight quantization scheme.
        calib_texts: calibration texts (RTN ignores the data but they are validated).
        max_seq_len: truncation length of each calibration sample.
        seed: seeds torch's RNG (restored afterwards) for the duration of the call;
            samples are used in a deterministic, length-sorted order.
        method_kwargs: extra arguments for the GPTQ / AWQ modifier (see :func:`ptq_recipe`).

    Returns:
        ``model`` with compressed-tensors quantization attached (status ``FROZEN``).

    Raises:
        ValueError: bad method/arguments, a model that is already quantized, a scheme
            that does not fit the model, or AWQ on an unsupported architecture.
    """
    if method not in PTQ_METHODS:
        raise ValueError(f"method must be one of {PTQ_METHODS}, got {method!r}")
    if not isinstance(scheme, QuantScheme):
        raise ValueError(f"scheme must be a QuantScheme, got {type(scheme).__name__}")
    if any(hasattr(m, "quantization_scheme") for m in model.modules()):
        raise ValueError("model is already quantized; run_ptq expects a full-precision model")
    if not hasattr(model, "config"):
        raise ValueError("model must be a transformers PreTrainedModel (it has no .config)")
    targeted_modules(model, scheme)  # validates targets / group size before calibrating
    dataset = build_calibration_dataset(tokenizer, calib_texts, max_seq_len)
    recipe = ptq_recipe(method, scheme, model, method_kwargs)

    from llmcompressor import oneshot

    _ensure_metric_log_level()
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    with (
        torch.random.fork_rng(devices=[]),
        _resolvable_config(model),
        _cpu_pin_memory_workaround(),
    ):
        torch.manual_seed(seed)
        result = oneshot(
            model=model,
            tokenizer=tokenizer,
            recipe=recipe,
            dataset=dataset,
            num_calibration_samples=len(dataset),
            max_seq_length=max_seq_len,
            shuffle_calibration_samples=False,
            batch_size=1,
        )
    model.train(was_training)
    logger.info(
        "run_ptq(%s, %s) on %s took %.3f s",
        method,
        scheme.name,
        type(model).__name__,
        time.perf_counter() - start,
    )
    if result is not model:  # oneshot quantizes in place; guard against API changes
        raise RuntimeError("llmcompressor.oneshot returned a different model object")
    return model


def save_quantized(
    model: nn.Module,
    tokenizer: Any,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a PTQ model as a compressed-tensors ``pack-quantized`` checkpoint.

    The weights are stored as packed low-bit integers (``weight_packed``,
    ``weight_scale``, ``weight_zero_point``) and ``config.json`` gets the
    ``quantization_config``, so ``AutoModelForCausalLM.from_pretrained(out_dir)`` loads
    it with compressed-tensors installed.  The directory is written to a temporary
    sibling and renamed into place.  ``model`` itself is not modified (a deep copy is
    compressed).

    Returns:
        the checkpoint directory.
    """
    if not any(hasattr(m, "quantization_scheme") for m in model.modules()):
        raise ValueError("model has no quantized layers; run run_ptq first")
    return save_compressed(copy.deepcopy(model), tokenizer, out_dir, metadata=metadata, overwrite=overwrite)
