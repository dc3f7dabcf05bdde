"""The QAT runs of one ``quant_qat@<reasoner>-<bits>`` stage and their full-precision controls (pure functions
of the params)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import QuantConfig


@dataclass(frozen=True)
class QATRun:
    """One QAT run of a (reasoner, bits) stage; ``rq1`` / ``rq2`` say which study it belongs to; ``source`` is
    its training data (``quant.qat.sources``)."""

    objective: str
    init: str
    bits: int
    seed: int
    rq1: bool = False
    rq2: bool = False
    source: str = "self"

    @property
    def name(self) -> str:
        tag = "" if self.source == "self" else f"-{self.source}"
        return f"{self.objective}-{self.init}{tag}-s{self.seed}"


@dataclass(frozen=True)
class ControlRun:
    """The full-precision control of the QAT-SFT runs of one (source, seed): the FP reasoner fine-tuned on the
    same data with the same objective, loop and budget, without fake quantization. It does not depend on the bit
    width. (QAT-KD's control is the FP model itself: distilling a model into itself has a zero gradient.)"""

    objective: str
    source: str
    seed: int

    @property
    def name(self) -> str:
        return f"control-{self.objective}-{self.source}-s{self.seed}"


def qat_runs(qc: QuantConfig, reasoner: str, bits: int) -> list[QATRun]:
    """The QAT runs of stage ``quant_qat@<reasoner>-<bits>`` (RQ1 first, then the extra RQ2 ones).

    RQ1: every objective x every ``qat.sources`` source from ``qat.init`` for every ``qat.seeds`` seed. RQ2
    (only at ``qat.ablation.bits`` and for the ablation reasoners; the reasoner's own traces): every
    ``ablation.inits`` init x every objective for the ablation seeds. A run that belongs to both is run once,
    flagged for both.
    """
    flags: dict[tuple[str, str, int, str], set[str]] = {}
    for seed in qc.qat.seeds:
        for source in qc.qat.sources:
            for obj in qc.qat.objectives:
                flags.setdefault((obj, qc.qat.init, seed, source), set()).add("rq1")
    if bits == qc.qat.ablation.bits and reasoner in qc.ablation_reasoners():
        for seed in qc.ablation_seeds():
            for init in qc.qat.ablation.inits:
                for obj in qc.qat.objectives:
                    flags.setdefault((obj, init, seed, "self"), set()).add("rq2")
    return [QATRun(o, i, int(bits), s, "rq1" in f, "rq2" in f, src) for (o, i, s, src), f in flags.items()]


def control_runs(qc: QuantConfig) -> list[ControlRun]:
    """The FP controls of the RQ1 runs (``quant.qat.controls``): one per source and seed of the ``sft``
    objective; none when controls are off or SFT is not compared."""
    if not qc.qat.controls or "sft" not in qc.qat.objectives:
        return []
    return [ControlRun("sft", source, seed) for seed in qc.qat.seeds for source in qc.qat.sources]
