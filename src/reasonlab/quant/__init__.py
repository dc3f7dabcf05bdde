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

# Submodules are imported explicitly (``from reasonlab.quant.ptq import run_ptq``) so that reading
# params (which imports reasonlab.quant.config) does not load torch, compressed-tensors or llm-compressor.
