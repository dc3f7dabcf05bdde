"""Evaluation: Avg@k, greedy accuracy, pass@k, output length, per tier, with 95% intervals.

* Avg@k: the mean over problems of the share of ``k`` samples at temperature
  ``T`` that are correct (the papers' Avg@16 at T=1.0). Its interval is a
  percentile bootstrap over problems (problems are the unit of sampling).
* Greedy accuracy: one greedy decode per problem; Wilson score interval.
* Order habits (tiny world): among the fully valid samples of problems with 2+ valid step orders, the
  share written in each habit's order (:data:`~reasonlab.world.problems.HABITS`): which order a model
  acquired in pretraining shows here.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .generate import SamplingConfig, generate, pick_backend
from .io import setup_threads
from .models.zoo import load_causal_lm, load_tokenizer
from .schema import SampledEval
from .world.problems import HABITS, valid_orders
from .world.tasks import Item, open_task

Z95 = 1.959963984540054
# what :func:`evaluate_suite` keeps of each sampled solution when asked for its rows
ROW_KEYS = ("tier", "pid", "sample", "correct", "step_validity", "n_tokens")


def avg_at_k(correct: np.ndarray) -> float:
    """``correct`` is a ``[problems, k]`` boolean array."""
    correct = np.asarray(correct, dtype=float)
    if correct.ndim != 2 or correct.size == 0:
        raise ValueError(f"correct must be a non-empty [problems, k] array, got shape {correct.shape}")
    return float(correct.mean(axis=1).mean())


def pass_at_k(correct: np.ndarray) -> float:
    return float(np.asarray(correct, dtype=bool).any(axis=1).mean())


def bootstrap_ci(per_problem: np.ndarray, n_boot: int = 2000, seed: int = 0, conf: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``per_problem``."""
    x = np.asarray(per_problem, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci of an empty array")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    a = (1 - conf) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def wilson_ci(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        raise ValueError("wilson_ci needs n > 0")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def evaluate_tier(model, tokenizer, items: Sequence[Item], *, k: int, temperature: float, top_p: float,
                  max_new_tokens: int, batch_size: int, seed: int, backend: str = "transformers",
                  model_path=None, tier: str = "", greedy: bool = True) -> tuple[dict, list[dict]]:
    """Metrics and per-sample records of one tier (``items``: :class:`~reasonlab.world.tasks.Item` s);
    ``greedy``: also one greedy decode per problem (its accuracy, interval and length)."""
    prompts = [it.prompt for it in items]
    samp = generate(model, tokenizer, prompts, SamplingConfig(k, temperature, top_p, max_new_tokens, seed, batch_size),
                    backend, desc=f"sample {tier}", model_path=model_path)
    greedy_out = generate(model, tokenizer, prompts, SamplingConfig(1, 0.0, 1.0, max_new_tokens, seed, batch_size),
                          backend, desc=f"greedy {tier}", model_path=model_path) if greedy else None
    correct = np.zeros((len(items), k), dtype=bool)
    records, lengths, validity, finished = [], [], [], []
    habits: list[tuple[str, ...]] = []  # of the fully valid samples of multi-order problems
    for i, p in enumerate(items):
        multi = p.problem is not None and len(valid_orders(p.problem, limit=2)) > 1
        for j, s in enumerate(samp[i]):
            v = p.check(s.text)
            if multi and v.all_valid:
                habits.append(v.habits)
            correct[i, j] = v.correct
            lengths.append(s.n_tokens)
            validity.append(v.step_validity)
            finished.append(s.finished)
            records.append({"tier": tier, "pid": p.pid, "sample": j, "greedy": False, "correct": v.correct,
                            "answer": v.answer, "step_validity": v.step_validity, "n_tokens": s.n_tokens,
                            "dialect": v.dialect, "text": s.text})
    g_correct = []
    g_len = []
    for i, p in enumerate(items if greedy else []):
        s = greedy_out[i][0]
        v = p.check(s.text)
        g_correct.append(v.correct)
        g_len.append(s.n_tokens)
        records.append({"tier": tier, "pid": p.pid, "sample": -1, "greedy": True, "correct": v.correct,
                        "answer": v.answer, "step_validity": v.step_validity, "n_tokens": s.n_tokens,
                        "dialect": v.dialect, "text": s.text})
    per_problem = correct.mean(axis=1)
    lo, hi = bootstrap_ci(per_problem, seed=seed)
    m = {
        f"avg@{k}": avg_at_k(correct),
        f"avg@{k}_ci95": [lo, hi],
        f"pass@{k}": pass_at_k(correct),
        "mean_len_tokens": float(np.mean(lengths)),
        "step_validity": float(np.mean(validity)),
        "finished": float(np.mean(finished)),
        "n_problems": len(items),
    }
    if greedy:
        glo, ghi = wilson_ci(int(sum(g_correct)), len(g_correct))
        m.update({"greedy": float(np.mean(g_correct)), "greedy_ci95": [glo, ghi],
                  "greedy_mean_len_tokens": float(np.mean(g_len))})
    if habits:
        m["order_habits"] = {h: sum(h in hs for hs in habits) / len(habits) for h in HABITS}
        m["order_habits_n"] = len(habits)
    return m, records


def evaluate_model(model_dir, world_dir, ev, seed: int) -> tuple[dict, list[dict]]:
    """Every tier of ``ev.tiers`` of the world in ``world_dir`` (``ev``: :class:`reasonlab.params.EvalParams`)."""
    setup_threads()
    backend = pick_backend(ev.backend)
    model = load_causal_lm(model_dir) if backend == "transformers" else None
    tok = load_tokenizer(model_dir)
    task = open_task(world_dir)
    metrics: dict = {"k": ev.k, "temperature": ev.temperature, "backend": backend}
    records: list[dict] = []
    for tier in ev.tiers:
        m, rec = evaluate_tier(model, tok, task.tier_items(tier, ev.limit), k=ev.k, temperature=ev.temperature,
                               top_p=ev.top_p, max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=seed,
                               backend=backend, model_path=model_dir, tier=tier)
        metrics[tier] = m
        records += rec
    return metrics, records


def eval_suite(task, ev: SampledEval) -> dict[str, list[Item]]:
    """The first ``ev.limit`` test items of every tier of ``ev.tiers``."""
    return {tier: task.tier_items(tier, ev.limit) for tier in ev.tiers}


def evaluate_suite(model, tokenizer, suite: Mapping[str, Sequence[Item]], ev: SampledEval, seed: int, *,
                   rows: bool = False) -> dict:
    """Compact metrics of one model on ``suite``: per tier ``avg_at_k``, ``greedy`` (if ``ev.greedy``), ``mean_len_tokens``,
    ``step_validity``; their means over tiers (``avg_at_k``, ``mean_len_tokens``).

    Keys do not depend on ``k`` (stable ``dvc exp show`` columns). Every model is sampled with the
    same seed (common random numbers), so two models differ only by what they are. ``rows``: also return
    ``out["rows"]``, one per sampled solution (:data:`ROW_KEYS`; greedy decodes left out), so that every
    difference between two models can be paired over the same problems.
    """
    out: dict = {}
    kept: list[dict] = []
    for tier, items in suite.items():
        m, recs = evaluate_tier(model, tokenizer, list(items), k=ev.k, temperature=ev.temperature, top_p=ev.top_p,
                                max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=seed, tier=tier,
                                greedy=ev.greedy)
        out[tier] = {"avg_at_k": m[f"avg@{ev.k}"], **({"greedy": m["greedy"]} if ev.greedy else {}),
                     "mean_len_tokens": m["mean_len_tokens"], "step_validity": m["step_validity"]}
        if rows:
            kept += [{key: r[key] for key in ROW_KEYS} for r in recs if not r["greedy"]]
    out["avg_at_k"] = float(np.mean([out[t]["avg_at_k"] for t in suite]))
    out["mean_len_tokens"] = float(np.mean([out[t]["mean_len_tokens"] for t in suite]))
    if rows:
        out["rows"] = kept
    return out


def probe_correct(model, tokenizer, items: Sequence[Item], *, k: int = 1, temperature: float = 0.0,
                  max_new_tokens: int = 160, seed: int = 0, batch_size: int = 512) -> np.ndarray:
    """``[items, k]``: whether each of ``k`` samples (``temperature`` 0: greedy) of every item is right."""
    outs = generate(model, tokenizer, [it.prompt for it in items],
                    SamplingConfig(k, temperature, 1.0, max_new_tokens, seed, batch_size), desc="probe")
    return np.array([[bool(it.check(s.text).correct) for s in o] for it, o in zip(items, outs)], dtype=bool)


def probe_accuracy(model, tokenizer, items: Sequence[Item], **kw) -> float:
    """Avg@k on ``items`` (:func:`probe_correct`'s arguments): a cheap accuracy-vs-step probe."""
    return float(probe_correct(model, tokenizer, items, **kw).mean())
