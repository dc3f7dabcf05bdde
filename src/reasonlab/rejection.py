"""What both papers' rejection samplers share: the fragment filter and per-problem random choices.

The paradox's rejection sampling (:mod:`reasonlab.paradox.rejection`, SLM-RFT) and the QAT training data
(:mod:`reasonlab.quant.traces`) both keep only samples that are complete solutions and both choose among a
problem's kept samples with a generator that depends only on the seed and the problem id. Neither paper's
code is imported here, so a change to one paper does not re-run the other's stages.

The *fragment filter* (conservative: it drops generations that are not complete solutions):

* ``unfinished``         cut off by the length limit (no ``<eos>``),
* ``empty``              nothing but whitespace,
* ``repeated_sentence``  the same sentence twice (a degenerate loop),
* ``no_answer``          no answer sentence in any dialect.
"""

from __future__ import annotations

import zlib

import numpy as np

from .generate import Sample
from .world.verifier import split_sentences

FILTER_REASONS = ("unfinished", "empty", "repeated_sentence", "no_answer")


def pid_rng(seed: int, pid: str, salt: str = "") -> np.random.Generator:
    """A generator that is a pure function of ``(seed, pid, salt)`` (independent of processing order)."""
    return np.random.default_rng([int(seed), zlib.crc32(f"{salt}|{pid}".encode())])


def fragment_reason(sample: Sample, verdict=None) -> str | None:
    """Why ``sample`` is a fragment (one of :data:`FILTER_REASONS`), or ``None`` when it is kept.

    ``verdict`` (the sample's check by its item) is only needed for the answer check;
    the other checks are problem-independent.
    """
    if not sample.finished:
        return "unfinished"
    sents = split_sentences(sample.text)
    if not sents:
        return "empty"
    if len(set(sents)) < len(sents):
        return "repeated_sentence"
    if verdict is not None and not verdict.has_answer:
        return "no_answer"
    return None


__all__ = ["FILTER_REASONS", "fragment_reason", "pid_rng"]
