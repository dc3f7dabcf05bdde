"""RQ4, calibration-domain alignment: the calibration set of each domain, per-problem accuracy, curve summaries.

* :func:`calibration_sets` one set per domain of ``quant.calib_align.domains``, all of the same size, each text
  with its source (a held-out problem's pid, or ``general:<row>``) and the set's content hash;
* :func:`probe_items` the validation problems of the QAT probe (never a test tier);
* :func:`suite_scores` / :func:`probe_scores` a model's accuracy per problem (test suite / validation probe), so
  that two conditions are compared problem by problem (:func:`reasonlab.stats.paired_diff`);
* :class:`ProblemCurve` the per-problem probe at each probed QAT step, kept in the run's folder (a resumed run
  keeps its points);
* :func:`steps_to_target`, :func:`area_after_start` curve summaries that do not reward a higher start alone:
  the area leaves step 0 out (the init's own accuracy is reported apart, and so is PTQ alone);
* :func:`claim` a verdict (holds / does not hold / not testable here) from a paired difference and its
  precondition; :func:`room` that precondition (a model starts below its control by more than :data:`Z` se);
* :func:`problem_shares` the share of correct samples per problem from
  :func:`reasonlab.evaluate.evaluate_suite`'s rows (RQ1, RQ4 and the 2-bit stage use it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import bootstrap_ci, evaluate_suite, probe_correct
from ..io import params_hash, write_text
from ..stats import paired_diff
from ..world.tasks import Item, Task
from .config import CalibAlignConfig, ValidationProbe

__all__ = ["CalibSet", "calibration_sets", "probe_items", "problem_shares", "suite_scores", "probe_scores", "ProblemCurve",
           "steps_to_target", "area_after_start", "claim", "room", "Z"]

Z = 2.0  # a precondition's gap must exceed this many standard errors


@dataclass(frozen=True)
class CalibSet:
    """One domain's calibration texts and where each one comes from."""

    domain: str
    texts: list[str]
    sources: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return params_hash(self.texts)

    def summary(self, tokenizer) -> dict:
        n_tok = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in self.texts]
        return {"n": len(self.texts), "digest": self.digest, "mean_tokens": float(np.mean(n_tok)),
                "sources": self.sources[:5]}


def calibration_sets(ca: CalibAlignConfig, task: Task, traces: Sequence[Mapping[str, Any]],
                     items_by_pid: Mapping[str, Item], eos: str) -> dict[str, CalibSet]:
    """The calibration set of every domain in ``ca.domains``, each of ``n`` texts, ``n`` the smallest of
    ``ca.n_samples``, the traces' distinct problems and the general corpus.

    ``traces``: the reasoner's QAT training traces (``quant_traces``), one kept per problem in file order;
    ``other_dialect``: the same problems' solutions in ``ca.other_dialect`` (``items_by_pid`` maps a trace's pid
    to its held-out problem); ``general``: the first paragraphs of the general corpus. Reasoning texts are
    ``prompt solution eos``, as the model reads its training traces.
    """
    own, seen = [], set()
    for t in traces:
        if t["pid"] not in seen:
            seen.add(t["pid"])
            own.append(t)
    general = task.general_texts() if "general" in ca.domains else []
    n = min(ca.n_samples, len(own), *([len(general)] if "general" in ca.domains else []))
    if n == 0:
        raise ValueError(f"quant.calib_align: no calibration texts ({len(own)} traced problems, "
                         f"{len(general)} general paragraphs)")
    own = own[:n]
    out: dict[str, CalibSet] = {}
    for d in ca.domains:
        if d == "traces":
            out[d] = CalibSet(d, [f"{t['prompt']} {t['text']} {eos}" for t in own], [t["pid"] for t in own])
        elif d == "general":
            out[d] = CalibSet(d, general[:n], [f"general:{i}" for i in range(n)])
        else:
            missing = [t["pid"] for t in own if t["pid"] not in items_by_pid]
            if missing:
                raise ValueError(f"quant.calib_align: trace problem(s) {missing[:3]} are not in the held-out "
                                 "sample of quant.traces (were the traces made with other params?)")
            texts = []
            for t in own:
                it = items_by_pid[t["pid"]]
                sol = task.solution(it, ca.other_dialect)
                if not sol:
                    raise ValueError(f"quant.calib_align.other_dialect={ca.other_dialect!r}: problem {it.pid} "
                                     "has no solution in that dialect")
                texts.append(f"{it.prompt} {sol} {eos}")
            out[d] = CalibSet(d, texts, [t["pid"] for t in own])
    return out


def probe_items(task: Task, n: int, exclude: set[str]) -> tuple[list[Item], str]:
    """The problems of the validation probe: the first ``n`` of the world's validation split; a world without one
    (the hub worlds) gives the first ``n`` held-out problems not in ``exclude`` (the QAT traces' problems).
    Never a test tier. Returns the items and the split they come from."""
    if (task.world_dir / "validation").exists():
        return task.split_items("validation", range(min(n, task.split_size("validation")))), "validation"
    picked: list[Item] = []
    size, start = task.heldout_size, 0
    while len(picked) < n and start < size:
        chunk = task.heldout_items(range(start, min(start + 4 * n, size)))
        picked += [it for it in chunk if it.pid not in exclude][: n - len(picked)]
        start += 4 * n
    if not picked:
        raise ValueError(f"{task.world_dir}: no validation split and no held-out problem left for the probe")
    return picked, "heldout"


def problem_shares(rows: Sequence[Mapping[str, Any]], suite: Mapping[str, Sequence[Any]]) -> list[float]:
    """The share of correct sampled solutions of every problem of ``suite`` (suite order), from the ``rows`` of
    :func:`reasonlab.evaluate.evaluate_suite` (``rows=True``). Raises naming the problem when one has no rows."""
    correct: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        correct.setdefault((r["tier"], r["pid"]), []).append(bool(r["correct"]))
    out = []
    for tier, items in suite.items():
        for it in items:
            got = correct.get((tier, it.pid))
            if not got:
                raise ValueError(f"problem_shares: no sampled solution of {tier}:{it.pid}")
            out.append(float(np.mean(got)))
    return out


def suite_scores(model, tokenizer, suite: Mapping[str, Sequence[Item]], ev, seed: int) -> tuple[dict, np.ndarray]:
    """Avg@k of ``model`` per tier of ``suite`` (``ev``: a :class:`~reasonlab.schema.SampledEval`) with its
    interval over problems, and the share of correct samples of every problem, tiers concatenated in ``suite``
    order (same seed: common random numbers, so two models' vectors pair problem by problem)."""
    res = evaluate_suite(model, tokenizer, suite, ev, seed, rows=True)
    per = np.asarray(problem_shares(res["rows"], suite), dtype=float)
    out: dict = {}
    at = 0
    for tier, items in suite.items():
        shares = per[at: at + len(items)]
        at += len(items)
        out[tier] = {"avg_at_k": res[tier]["avg_at_k"], "avg_at_k_ci95": list(bootstrap_ci(shares, seed=seed))}
    out["avg_at_k"] = res["avg_at_k"]
    return out, per


def probe_scores(model, tokenizer, items: Sequence[Item], probe: ValidationProbe, seed: int,
                 batch_size: int = 512) -> np.ndarray:
    """The share of ``probe.k`` samples with the right answer, per item (the same sampling seed every time)."""
    return probe_correct(model, tokenizer, items, k=probe.k, temperature=probe.temperature,
                         max_new_tokens=probe.max_new_tokens, seed=seed, batch_size=batch_size).mean(axis=1)


class ProblemCurve:
    """Per-problem probe accuracy of a QAT student at every probed step, as the training loop's ``on_log``.

    Points go to ``path`` (JSON) as they come, so a resumed run keeps them; ``fp`` is the full-precision model
    the fake-quantized student is dequantized into before sampling."""

    def __init__(self, path: str | Path, fp, tokenizer, items: Sequence[Item], probe: ValidationProbe, seed: int):
        self.path, self.fp, self.tok, self.items, self.probe, self.seed = Path(path), fp, tokenizer, items, probe, seed
        self.points: dict[int, list[float]] = {}
        if self.path.exists():
            self.points = {int(s): v for s, v in json.loads(self.path.read_text()).items()}

    def __call__(self, step: int, model) -> dict:
        from .packed import dequantized_copy

        scores = probe_scores(dequantized_copy(self.fp, model), self.tok, self.items, self.probe, self.seed)
        self.points[int(step)] = [float(x) for x in scores]
        write_text(self.path, json.dumps({str(s): self.points[s] for s in sorted(self.points)}))
        return {"probe_acc": float(scores.mean())}

    def steps(self) -> list[int]:
        return sorted(self.points)

    def matrix(self) -> np.ndarray:
        """``[steps, problems]`` in :meth:`steps` order."""
        return np.array([self.points[s] for s in self.steps()])

    def tsv(self) -> str:
        return "step\tprobe_acc\n" + "".join(f"{s}\t{np.mean(self.points[s]):.6f}\n" for s in self.steps())


def steps_to_target(steps: Sequence[int], acc: Sequence[float], target: float) -> int | None:
    """The first probed step whose accuracy reaches ``target`` (0 when the init already does; ``None`` if the
    curve never does)."""
    for s, a in sorted(zip(steps, acc)):
        if a >= target:
            return int(s)
    return None


def area_after_start(steps: Sequence[int], values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (``[steps, ...]``) over the probed steps after step 0: the normalised area under an
    equally spaced curve, without the init's own point (a higher start alone does not win it)."""
    steps = np.asarray(steps)
    keep = steps > 0
    if not keep.any():
        raise ValueError("area_after_start: no probed step after 0")
    return np.asarray(values, dtype=float)[keep].mean(axis=0)


def room(control, other, seed: int = 0, n_boot: int = 2000) -> dict:
    """The precondition of a recovery claim: :func:`reasonlab.stats.paired_diff` of ``control - other`` and ``met``
    when ``other`` starts below its control by more than :data:`Z` standard errors (there is room to recover)."""
    d = paired_diff(control, other, n_boot=n_boot, seed=seed)
    return {**d, "met": bool(d["mean"] > Z * d["se"])}


def claim(diff: Mapping[str, Any] | None, precondition: bool, why_not: str = "") -> dict:
    """Verdict of "the aligned domain is higher": ``holds`` when the paired interval lies above 0, ``does not
    hold`` otherwise (``opposite`` says whether it lies below 0), ``not testable here`` when the precondition
    fails (``why_not`` says which)."""
    if not precondition or diff is None:
        return {"verdict": "not testable here", "why": why_not, **({"diff": dict(diff)} if diff else {})}
    lo, hi = diff["ci95"]
    return {"verdict": "holds" if lo > 0 else "does not hold", "opposite": bool(hi < 0), "diff": dict(diff)}
