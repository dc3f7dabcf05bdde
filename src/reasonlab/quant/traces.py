"""The QAT training data: traces sampled from the full-precision reasoner and verified.

The full-precision reasoner samples ``traces.samples_per_problem`` solutions for a seeded subset of
the training pool; complete, verified-correct ones are kept (at most ``traces.max_per_problem``
distinct ones per problem), as the paper's self-generated data. :func:`source_traces` gives the same
problems' data of another source (``quant.qat.sources``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..generate import SamplingConfig, generate
from ..io import write_text
from ..models.data import sft_example
from ..models.batching import Example
from ..rejection import fragment_reason, pid_rng
from ..world.tasks import Item, Task
from .config import TracesConfig


def trace_items(task: Task, n: int, seed: int, dialect: str | None = None) -> tuple[list[Item], list[str | None]]:
    """A seeded random subset of ``n`` held-out problems (in pool order; never seen in pretraining), and each
    one's solution in ``dialect`` (:meth:`~reasonlab.world.tasks.Task.solution`; ``None`` where the world has none)."""
    size = task.heldout_size
    idx = np.sort(np.random.default_rng([seed, 4]).permutation(size)[: min(n, size)])
    items = task.heldout_items(idx.tolist())
    return items, [task.solution(it, dialect) if dialect else it.reference for it in items]


def sample_traces(model, tokenizer, items: Sequence[Item], tc: TracesConfig,
                  references: Sequence[str | None] | None = None) -> tuple[list[dict], dict]:
    """Sample ``tc.samples_per_problem`` solutions per item and keep the verified-correct ones.

    A sample is kept when it is complete (:func:`reasonlab.rejection.fragment_reason`: ended with
    ``<eos>``, not empty, no repeated sentence) and its answer is correct; at most
    ``tc.max_per_problem`` distinct kept texts per problem, chosen under ``(tc.seed, pid)``.
    With ``tc.fallback == "reference"`` a problem without a kept sample contributes its
    reference solution (``references[i]``) instead, marked ``source: reference`` (for the smoke
    profile, whose barely trained reasoners solve nothing).

    Returns:
        ``(traces, stats)``: ``traces`` are ``{"pid", "prompt", "text", "n_tokens", "source"}``
        dicts in item order; ``stats`` counts problems, samples, correct samples, solvable
        problems, traces (and fallbacks), their mean length and the sampling wall time.
    """
    if not items:
        raise ValueError("sample_traces: no problems")
    cfg = SamplingConfig(n=tc.samples_per_problem, temperature=tc.temperature, top_p=tc.top_p,
                         max_new_tokens=tc.max_new_tokens, seed=tc.seed, batch_size=tc.batch_size)
    t0 = time.perf_counter()
    out = generate(model, tokenizer, [it.prompt for it in items], cfg, desc="quant traces")
    wall = time.perf_counter() - t0
    traces: list[dict] = []
    if tc.fallback == "reference" and (references is None or len(references) != len(items)):
        raise ValueError("quant.traces.fallback=reference needs one reference solution per problem")
    n_correct = n_solvable = n_fallback = 0
    for i, (it, samples) in enumerate(zip(items, out)):
        good: dict[str, Any] = {}
        for s in samples:
            ok = fragment_reason(s) is None and bool(it.check(s.text).correct)
            n_correct += ok
            if ok and s.text not in good:
                good[s.text] = s
        if not good:
            ref = references[i] if references is not None else None
            if tc.fallback == "reference" and ref:
                n_fallback += 1
                traces.append({"pid": it.pid, "prompt": it.prompt, "text": ref,
                               "n_tokens": len(tokenizer(ref, add_special_tokens=False)["input_ids"]),
                               "source": "reference"})
            continue
        n_solvable += 1
        kept = list(good.values())
        pick = sorted(pid_rng(tc.seed, it.pid, "quant-traces").permutation(len(kept))[: tc.max_per_problem])
        traces += [{"pid": it.pid, "prompt": it.prompt, "text": kept[j].text, "n_tokens": kept[j].n_tokens,
                    "source": "self"} for j in pick]
    n_samples = len(items) * tc.samples_per_problem
    stats = {
        "n_problems": len(items),
        "n_samples": n_samples,
        "pass_rate": n_correct / n_samples,
        "solvable": n_solvable,
        "solvable_fraction": n_solvable / len(items),
        "n_traces": len(traces),
        "n_reference_fallback": n_fallback,
        "mean_trace_tokens": float(np.mean([t["n_tokens"] for t in traces])) if traces else 0.0,
        "wall_s": wall,
    }
    return traces, stats


def source_traces(task: Task, traces: Sequence[Mapping[str, Any]], items_by_pid: Mapping[str, Item], source: str,
                  oracle_dialect: str = "oracle") -> list[dict]:
    """The QAT training data of ``source`` on exactly the problems of ``traces`` (the reasoner's own verified
    traces), one record per trace, so every source has the same problems, the same count and the same weight per
    problem and differs only in the text: ``self``, the traces themselves; ``oracle``, each problem's correct
    solution in ``oracle_dialect`` and that dialect's step order (a stronger writer's style, as the paper's SFT data
    comes from a stronger model); ``reference``, the world's reference solution. ``items_by_pid`` maps a trace's
    pid to its held-out problem (:func:`trace_items`).

    Raises:
        ValueError: naming the source and the problem when a problem is unknown or has no such solution.
    """
    if source == "self":
        return [dict(t) for t in traces]
    if source not in ("oracle", "reference"):
        raise ValueError(f"quant.qat.sources: unknown source {source!r} (self, oracle, reference)")
    out = []
    for t in traces:
        it = items_by_pid.get(t["pid"])
        if it is None:
            raise ValueError(f"quant.qat.sources={source!r}: trace problem {t['pid']} is not in the held-out sample "
                             "of quant.traces (were the traces made with other params?)")
        text = task.solution(it, oracle_dialect) if source == "oracle" else it.reference
        if not text:
            raise ValueError(f"quant.qat.sources={source!r}: problem {it.pid} has no such solution")
        out.append({"pid": t["pid"], "prompt": t["prompt"], "text": text, "source": source})
    return out


def write_traces(path: str | Path, traces: Sequence[Mapping[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(dict(t), sort_keys=True) + "\n" for t in traces))


def load_traces(path: str | Path) -> list[dict]:
    """Traces written by :func:`write_traces` (JSON lines); raises naming the file on bad content."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"traces not found: {path} (run its quant_traces stage first)")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append({"pid": rec["pid"], "prompt": rec["prompt"], "text": rec["text"],
                        "n_tokens": rec.get("n_tokens", 0), "source": rec.get("source", "self")})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{i}: not a trace record ({e})") from None
    if not out:
        raise ValueError(
            f"{path}: no traces (the full-precision model solved none of the sampled problems; "
            "raise quant.traces.n_problems / samples_per_problem or train the reasoner longer)"
        )
    return out


def trace_examples(tokenizer, traces: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Training examples (loss on the solution and its ``<eos>``) from traces."""
    return [sft_example(tokenizer, t["prompt"], t["text"]) for t in traces]
