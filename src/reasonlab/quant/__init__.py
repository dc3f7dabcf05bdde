"""Low-bit weight quantization for causal LMs: PTQ, QAT (fake quant + KD losses), export (paper B).

Library modules (one idea each):

* :mod:`~reasonlab.quant.config`: the typed ``quant:`` params (torch-free; :class:`QuantParams`, what the quant
  stages load) and the names they use;
* :mod:`~reasonlab.quant.scheme`: :class:`QuantScheme` and its compressed-tensors config;
* :mod:`~reasonlab.quant.qparams`: the scales / zero-points attached to a quantized model, loading a
  packed checkpoint unpacked;
* :mod:`~reasonlab.quant.ptq`: RTN / GPTQ / AWQ with llm-compressor;
* :mod:`~reasonlab.quant.fakequant`: STE fake quantization matching compressed-tensors, :func:`prepare_qat`;
* :mod:`~reasonlab.quant.export`: QAT model -> real packed low-bit checkpoint;
* :mod:`~reasonlab.quant.packed`: writing, reloading, checking and measuring packed checkpoints;
* :mod:`~reasonlab.quant.traces`, :mod:`~reasonlab.quant.calib`: QAT training data, PTQ calibration data;
* :mod:`~reasonlab.quant.runs`, :mod:`~reasonlab.quant.qat`: which QAT runs a stage makes, one run's parts;
* :mod:`~reasonlab.quant.tables`: the report's tables (pure functions of the metrics).

:mod:`~reasonlab.quant.drivers` holds the stage drivers. ``llmcompressor`` is imported lazily (only
when PTQ runs), so reading params does not load torch, compressed-tensors or llm-compressor.
"""
