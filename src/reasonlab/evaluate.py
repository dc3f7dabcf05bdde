"""Evaluation: Avg@k, greedy accuracy, pass@k, output length, per tier, with 95% intervals.

* Avg@k: the mean over problems of the share of ``k`` samples at temperature
  ``T`` that are correct (the papers' Avg@16 at T=1.0). Its interval is a
  percentile bootstrap over problems (problems are the unit of sampling).
* Greedy accuracy: one greedy decode per problem; Wilson score interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from .generate import SamplingConfig, generate
from .models.data import prompt_text
from .world.problems import Problem
from .world.verifier import verify

Z95 = 1.959963984540054


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


@dataclass(frozen=True)
class EvalItem:
    """One test question: its prompt and a checker returning an object with
    ``correct``, ``answer``, ``step_validity`` and ``dialect`` (a :class:`~reasonlab.world.verifier.Verdict`
    in the tiny world; :class:`reasonlab.hub.MathVerdict` for hub data)."""

    pid: str
    prompt: str
    check: Callable[[str], object]


def tiny_items(problems: list[Problem]) -> list[EvalItem]:
    return [EvalItem(p.pid, prompt_text(p.text), partial(verify, p)) for p in problems]


def evaluate_tier(model, tokenizer, problems: list[Problem] | list[EvalItem], *, k: int, temperature: float, top_p: float,
                  max_new_tokens: int, batch_size: int, seed: int, backend: str = "transformers",
                  model_path=None, tier: str = "") -> tuple[dict, list[dict]]:
    """Metrics and per-sample records of one tier (``problems``: world problems or :class:`EvalItem`)."""
    items = problems if problems and isinstance(problems[0], EvalItem) else tiny_items(problems)
    problems = items
    prompts = [it.prompt for it in items]
    samp = generate(model, tokenizer, prompts, SamplingConfig(k, temperature, top_p, max_new_tokens, seed, batch_size),
                    backend, desc=f"sample {tier}", model_path=model_path)
    greedy = generate(model, tokenizer, prompts, SamplingConfig(1, 0.0, 1.0, max_new_tokens, seed, batch_size),
                      backend, desc=f"greedy {tier}", model_path=model_path)
    correct = np.zeros((len(problems), k), dtype=bool)
    records, lengths, validity, finished = [], [], [], []
    for i, p in enumerate(problems):
        for j, s in enumerate(samp[i]):
            v = p.check(s.text)
            correct[i, j] = v.correct
            lengths.append(s.n_tokens)
            validity.append(v.step_validity)
            finished.append(s.finished)
            records.append({"tier": tier, "pid": p.pid, "sample": j, "greedy": False, "correct": v.correct,
                            "answer": v.answer, "step_validity": v.step_validity, "n_tokens": s.n_tokens,
                            "dialect": v.dialect, "text": s.text})
    g_correct = []
    g_len = []
    for i, p in enumerate(problems):
        s = greedy[i][0]
        v = p.check(s.text)
        g_correct.append(v.correct)
        g_len.append(s.n_tokens)
        records.append({"tier": tier, "pid": p.pid, "sample": -1, "greedy": True, "correct": v.correct,
                        "answer": v.answer, "step_validity": v.step_validity, "n_tokens": s.n_tokens,
                        "dialect": v.dialect, "text": s.text})
    per_problem = correct.mean(axis=1)
    lo, hi = bootstrap_ci(per_problem, seed=seed)
    glo, ghi = wilson_ci(int(sum(g_correct)), len(g_correct))
    m = {
        f"avg@{k}": avg_at_k(correct),
        f"avg@{k}_ci95": [lo, hi],
        f"pass@{k}": pass_at_k(correct),
        "greedy": float(np.mean(g_correct)),
        "greedy_ci95": [glo, ghi],
        "mean_len_tokens": float(np.mean(lengths)),
        "greedy_mean_len_tokens": float(np.mean(g_len)),
        "step_validity": float(np.mean(validity)),
        "finished": float(np.mean(finished)),
        "n_problems": len(problems),
    }
    return m, records


def evaluate_model(model_dir, world_dir, ev, seed: int) -> tuple[dict, "list[dict]"]:
    """Evaluate a saved model on every tier of ``ev.tiers`` (``ev``: :class:`reasonlab.params.EvalParams`)."""
    from pathlib import Path

    from .generate import pick_backend
    from .io import setup_threads
    from .models.zoo import load_causal_lm, load_tokenizer_any
    from .world.build import load_problems

    setup_threads()
    backend = pick_backend(ev.backend)
    model = load_causal_lm(model_dir) if backend == "transformers" else None
    tok = load_tokenizer_any(model_dir)
    metrics: dict = {"k": ev.k, "temperature": ev.temperature, "backend": backend}
    records: list[dict] = []
    for tier in ev.tiers:
        if (Path(world_dir) / "hub.json").exists():  # paper profile
            from .hub import load_hub_items

            probs = load_hub_items(world_dir, tier)
        else:
            probs = tiny_items(load_problems(Path(world_dir), f"test_{tier}"))
        if ev.limit:
            probs = probs[: ev.limit]
        m, rec = evaluate_tier(model, tok, probs, k=ev.k, temperature=ev.temperature, top_p=ev.top_p,
                               max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=seed,
                               backend=backend, model_path=model_dir, tier=tier)
        metrics[tier] = m
        records += rec
    return metrics, records
