"""The QAT runs of one ``quant_qat@<reasoner>-<bits>`` stage (a pure function of the params)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import QuantConfig


@dataclass(frozen=True)
class QATRun:
    """One QAT run of a (reasoner, bits) stage; ``rq1`` / ``rq2`` say which study it belongs to."""

    objective: str
    init: str
    bits: int
    seed: int
    rq1: bool = False
    rq2: bool = False

    @property
    def name(self) -> str:
        return f"{self.objective}-{self.init}-s{self.seed}"


def qat_runs(qc: QuantConfig, reasoner: str, bits: int) -> list[QATRun]:
    """The QAT runs of stage ``quant_qat@<reasoner>-<bits>`` (RQ1 first, then the extra RQ2 ones).

    RQ1: every objective from ``qat.init`` for every ``qat.seeds`` seed. RQ2 (only at
    ``qat.ablation.bits`` and for the ablation reasoners): every ``ablation.inits`` init x every
    objective for the ablation seeds. A run that belongs to both is run once, flagged for both.
    """
    flags: dict[tuple[str, str, int], set[str]] = {}
    for seed in qc.qat.seeds:
        for obj in qc.qat.objectives:
            flags.setdefault((obj, qc.qat.init, seed), set()).add("rq1")
    if bits == qc.qat.ablation.bits and reasoner in qc.ablation_reasoners():
        for seed in qc.ablation_seeds():
            for init in qc.qat.ablation.inits:
                for obj in qc.qat.objectives:
                    flags.setdefault((obj, init, seed), set()).add("rq2")
    return [QATRun(o, i, int(bits), s, "rq1" in f, "rq2" in f) for (o, i, s), f in flags.items()]
