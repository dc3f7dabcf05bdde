"""Typed `paradox:` section of params.yaml (Quality-Utility Paradox pipeline)."""

from __future__ import annotations

from ..schema import Strict


class ParadoxConfig(Strict):
    enabled: bool = True
