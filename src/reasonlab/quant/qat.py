"""One QAT run: a fake-quantized student from its initialisation, the accuracy-vs-step probe, the loss.

* :func:`qat_student` the FP model prepared for QAT from ``fp`` (min-max scales) or a PTQ checkpoint;
* :class:`ProbeCurve` the probe's accuracy at each probed step (step 0 included), kept as a TSV in the
  run's checkpoint folder so a resumed run keeps the points it already has;
* :func:`qat_loss` the per-token loss of an objective (``sft``: CE on the traces; ``kd``: divergence to
  the FP teacher's token distributions, as configured in ``quant.qat.kd``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from ..evaluate import probe_accuracy
from ..io import write_text
from ..models.losses import LossFn, objective_loss
from ..world.tasks import Item
from .config import ProbeConfig, QuantConfig
from .fakequant import prepare_qat
from .packed import dequantized_copy
from .scheme import QuantScheme


def qat_student(fp, scheme: QuantScheme, ptq_path: str | Path | None, learnable_scales: bool = False):
    """A trainable copy of ``fp`` with fake-quantized linears: from ``fp`` itself (``ptq_path`` ``None``:
    min-max scales, i.e. the RTN grid) or from a PTQ checkpoint (its weights, scales and zero-points)."""
    student = copy.deepcopy(fp)
    student.requires_grad_(True)
    return prepare_qat(student, scheme, "fp" if ptq_path is None else "ptq", ptq_model=ptq_path,
                       learnable_scales=learnable_scales)


def qat_loss(qc: QuantConfig, objective: str) -> LossFn:
    """Per-token loss of a QAT objective: ``sft`` = CE; ``kd`` = the configured divergence (mixed with CE)."""
    return objective_loss(objective, qc.qat.kd)


class ProbeCurve:
    """Avg@k of the dequantized student on the probe items, at the steps the training loop asks for.

    Called as the loop's ``on_log(step, model)``; every point is written to ``path`` at once.
    """

    def __init__(self, path: str | Path, fp, tokenizer, items: Sequence[Item], probe: ProbeConfig, seed: int):
        self.path, self.fp, self.tok, self.items, self.probe, self.seed = Path(path), fp, tokenizer, items, probe, seed
        self.points: dict[int, float] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()[1:]
            self.points = {int(s): float(v) for s, v in (ln.split("\t") for ln in lines if ln.strip())}

    def __call__(self, step: int, model) -> dict:
        pc = self.probe
        acc = probe_accuracy(dequantized_copy(self.fp, model), self.tok, self.items, k=pc.k,
                             temperature=pc.temperature, max_new_tokens=pc.max_new_tokens, seed=self.seed)
        self.points[step] = acc
        write_text(self.path, "step\tprobe_acc\n" + "".join(f"{s}\t{self.points[s]:.6f}\n" for s in sorted(self.points)))
        return {"probe_acc": acc}

    @property
    def first(self) -> float | None:
        return self.points.get(0)

    @property
    def last(self) -> float | None:
        return self.points[max(self.points)] if self.points else None
