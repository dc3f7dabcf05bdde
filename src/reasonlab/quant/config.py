"""Typed `quant:` section of params.yaml (low-bit quantization pipeline)."""

from __future__ import annotations

from ..schema import Strict


class QuantConfig(Strict):
    enabled: bool = True
