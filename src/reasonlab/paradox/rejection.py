"""Rejection sampling (RFT data): sample, filter fragments, verify, keep one correct trace per problem.

For every problem (a task :class:`~reasonlab.world.tasks.Item`) the small model draws ``n`` samples. A conservative
*fragment filter* (:func:`reasonlab.rejection.fragment_reason`, shared with the QAT traces) first drops
generations that are not complete solutions: ``unfinished``, ``empty``, ``repeated_sentence``, ``no_answer``.

The remaining ("kept") samples are checked by the item (the tiny world's verifier, or the paper
world's math-verify answer check); a problem is *SLM-solvable* when
at least one kept sample has the correct final answer, and one such sample is
chosen uniformly at random under ``(seed, pid)`` as its RFT trace. The choice
depends only on the seed and the problem id, not on the order of the problems.

:func:`select_traces` is the pure part (samples in, result out) so it can be
tested without a model; :func:`rejection_sample` adds the sampling.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..generate import Sample, SamplingConfig, generate
from ..io import write_json
from ..rejection import FILTER_REASONS, fragment_reason, pid_rng
from ..world.tasks import Item


@dataclass(frozen=True)
class RftTrace:
    """The RFT trace of one SLM-solvable problem."""

    pid: str
    text: str
    sample_index: int  # which of the n samples
    dialect: str | None  # dialect of its steps (None: no parsable step)
    all_valid: bool  # correct answer *and* every step valid


@dataclass
class RejectionResult:
    """Outcome of rejection sampling.

    ``traces`` maps the pid of every SLM-solvable problem to its chosen trace (in the order of the
    input problems); ``samples[pid]`` holds one record per sample (``text``, ``finished``,
    ``n_tokens``, ``reason`` (``None`` = kept), ``correct``, ``all_valid``, ``dialect``);
    ``stats`` the summary (see :func:`select_traces`).
    """

    traces: dict[str, RftTrace]
    samples: dict[str, list[dict]]
    stats: dict = field(default_factory=dict)

    @property
    def solvable(self) -> list[str]:
        return list(self.traces)


def select_traces(problems: Sequence[Item], samples: Sequence[Sequence[Sample]], seed: int,
                  wall_s: float | None = None) -> RejectionResult:
    """Filter and verify ``samples[i]`` (the samples of ``problems[i]``) and choose the RFT traces.

    ``stats``: ``n_problems``, ``n_samples``, ``kept`` (after the fragment filter), ``filtered``
    (count per reason), ``solvable``, ``solvable_fraction``, ``pass_rate`` (share of all samples
    with the correct answer), ``kept_pass_rate`` (share of kept samples with the correct answer),
    ``mean_problem_pass_rate`` (mean over problems of their share of correct kept samples),
    ``valid_trace_fraction`` (chosen traces whose every step is valid), ``dialects`` (of the chosen
    traces), ``wall_s`` and ``samples_per_s`` when ``wall_s`` is given.
    """
    if len(problems) != len(samples):
        raise ValueError(f"samples: expected one list per problem ({len(problems)}), got {len(samples)}")
    pids = [p.pid for p in problems]
    if len(set(pids)) != len(pids):
        dup = [k for k, c in Counter(pids).items() if c > 1][:5]
        raise ValueError(f"problems: duplicate pids {dup}")
    traces: dict[str, RftTrace] = {}
    records: dict[str, list[dict]] = {}
    filtered = Counter({r: 0 for r in FILTER_REASONS})
    n_samples = n_kept = n_correct = n_kept_correct = 0
    per_problem = []
    for p, ss in zip(problems, samples):
        recs = []
        for j, s in enumerate(ss):
            v = p.check(s.text)
            reason = fragment_reason(s, v)
            recs.append({"text": s.text, "finished": s.finished, "n_tokens": s.n_tokens, "reason": reason,
                         "correct": v.correct, "all_valid": v.all_valid, "dialect": v.dialect})
            n_samples += 1
            n_correct += v.correct
            if reason is None:
                n_kept += 1
                n_kept_correct += v.correct
            else:
                filtered[reason] += 1
        records[p.pid] = recs
        good = [j for j, r in enumerate(recs) if r["reason"] is None and r["correct"]]
        per_problem.append(len(good) / len(recs) if recs else 0.0)
        if good:
            j = int(good[pid_rng(seed, p.pid, "rft").integers(len(good))])
            r = recs[j]
            traces[p.pid] = RftTrace(p.pid, r["text"], j, r["dialect"], r["all_valid"])
    n = len(problems)
    stats = {
        "n_problems": n,
        "n_samples": n_samples,
        "kept": n_kept,
        "filtered": dict(filtered),
        "solvable": len(traces),
        "solvable_fraction": len(traces) / n if n else 0.0,
        "pass_rate": n_correct / n_samples if n_samples else 0.0,
        "kept_pass_rate": n_kept_correct / n_kept if n_kept else 0.0,
        "mean_problem_pass_rate": float(np.mean(per_problem)) if per_problem else 0.0,
        "valid_trace_fraction": (sum(t.all_valid for t in traces.values()) / len(traces)) if traces else 0.0,
        "dialects": dict(Counter(t.dialect or "none" for t in traces.values())),
    }
    if wall_s is not None:
        stats["wall_s"] = wall_s
        stats["samples_per_s"] = n_samples / wall_s if wall_s > 0 else float("nan")
    return RejectionResult(traces, records, stats)


def rejection_sample(model, tok, problems: Sequence[Item], n: int = 8, temperature: float = 1.0, *, seed: int,
                     max_new_tokens: int = 160, batch_size: int = 256, top_p: float = 1.0,
                     backend: str = "transformers", model_path=None) -> RejectionResult:
    """Sample ``n`` solutions per problem from ``model`` and select the RFT traces (:func:`select_traces`)."""
    if not problems:
        raise ValueError("problems: empty")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for rejection sampling (n distinct samples), got {temperature}")
    cfg = SamplingConfig(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                         batch_size=batch_size)
    t0 = time.perf_counter()
    out = generate(model, tok, [p.prompt for p in problems], cfg, backend, desc="rft sample",
                   model_path=model_path)
    wall = time.perf_counter() - t0
    return select_traces(problems, out, seed, wall_s=wall)


def save_rft(res: RejectionResult, path: str | Path) -> None:
    write_json(path, {"stats": res.stats, "traces": {pid: asdict(t) for pid, t in res.traces.items()},
                      "samples": res.samples})


def load_rft(path: str | Path) -> RejectionResult:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"rejection samples not found: {path} (run its paradox_sample stage first)")
    try:
        d = json.loads(path.read_text())
        traces = {pid: RftTrace(**t) for pid, t in d["traces"].items()}
        return RejectionResult(traces, d["samples"], d["stats"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a rejection-sampling result ({e})") from None


def failed_samples(res: RejectionResult) -> dict[str, list[str]]:
    """Complete (non-fragment) samples that are not fully valid: ``pid -> texts`` (distinct)."""
    out: dict[str, list[str]] = {}
    for pid, recs in res.samples.items():
        texts = list(dict.fromkeys(r["text"] for r in recs if r["reason"] is None and not r["all_valid"]))
        if texts:
            out[pid] = texts
    return out


def own_samples(res: RejectionResult) -> list[str]:
    """The model's own complete samples (the token-shift reference)."""
    return [r["text"] for recs in res.samples.values() for r in recs if r["reason"] is None]


__all__ = ["RftTrace", "RejectionResult", "failed_samples", "load_rft", "own_samples", "rejection_sample", "save_rft",
           "select_traces"]
