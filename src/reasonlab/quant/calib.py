"""PTQ calibration data from a chosen domain (the QAT training traces, or the general corpus)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..world.tasks import Task
from .config import CalibConfig


def calibration_texts(calib: CalibConfig, task: Task, traces: Sequence[Mapping[str, Any]], eos: str) -> list[str]:
    """``calib.n_samples`` PTQ calibration texts from ``calib.domain``.

    ``traces``: prompt + solution + ``eos`` of the QAT training traces (the aligned domain);
    ``general``: paragraphs of the world's general-domain corpus (no arithmetic).
    """
    n = calib.n_samples
    if calib.domain == "traces":
        if not traces:
            raise ValueError("quant.calib.domain=traces but there are no traces")
        return [f"{t['prompt']} {t['text']} {eos}" for t in traces[:n]]
    texts = task.general_texts()[:n]
    if not texts:
        raise ValueError(f"quant.calib.domain=general but {task.world_dir}/general is empty")
    return texts
