"""Why the paradox happens: distributional drift, measured three ways.

* :func:`perplexity` the base small model's perplexity on a set's solutions, globally and per quarter
  (Q1-Q4) of each trace's solution tokens (drift shows up as high perplexity, often from the first
  tokens on). Token-weighted, so ``log ppl = sum_q n_q log ppl_q / sum_q n_q``. The scored tokens are
  those the fine-tuning loss sees: the solution and its ``<eos>``.
* :func:`token_shift` how a set's token distribution differs from the model's own samples: the
  tokens whose share changes most, the total-variation distance and the share of "symbolic" tokens.
* :func:`set_quality` / :func:`semantic_preservation` step validity, stated atoms and the share of
  the RFT trace's information atoms (correctly stated quantities) kept by a refined trace;
  :func:`flaw_profile` the flaws hidden behind right answers (share of correct-answer traces with an
  invalid step, by kind).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.data import sft_example
from ..models.batching import collate
from ..world.problems import Problem
from ..world.tasks import Item
from ..world.verifier import FLAWS, Verdict, verify
from .oracle import valid_content

QUARTERS = ("Q1", "Q2", "Q3", "Q4")
SYMBOLIC_TOKENS = frozenset({"=", ";", "####"})


@torch.inference_mode()
def solution_token_nll_ids(model, tok, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 16,
                           max_len: int = 1024) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per solution (and its ``<eos>``) given its prompt: the target token ids and their negative
    log-likelihood (nats)."""
    if len(prompts) != len(solutions):
        raise ValueError(f"solutions: expected one per prompt ({len(prompts)}), got {len(solutions)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    exs = [sft_example(tok, p, s) for p, s in zip(prompts, solutions)]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for s in range(0, len(exs), batch_size):
        b = collate(exs[s : s + batch_size], tok.pad_token_id, max_len)
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        tgt = b["input_ids"][:, 1:]
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), reduction="none").view(tgt.shape)
        mask = b["loss_mask"][:, 1:]
        for i in range(len(tgt)):
            out.append((tgt[i][mask[i]].numpy(), nll[i][mask[i]].numpy().astype(np.float64)))
    return out


def solution_token_nll(model, tok, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 16,
                       max_len: int = 1024) -> list[np.ndarray]:
    """Per-token negative log-likelihood (nats) of each solution (and its ``<eos>``) given its prompt."""
    return [nll for _, nll in solution_token_nll_ids(model, tok, prompts, solutions, batch_size, max_len)]


def quarter_index(length: int) -> np.ndarray:
    """Quarter (0-3) of each position ``t`` of a ``length``-token trace: ``floor(4 t / length)``."""
    return (4 * np.arange(length)) // max(length, 1)


def perplexity_from_nll(nlls: Sequence[np.ndarray]) -> dict:
    """Global and per-quarter perplexity of per-trace token NLLs (token-weighted).

    Returns ``ppl, nll`` (mean per token), ``n_tokens, n_seqs``, ``quarters[Qk] = {ppl, nll, n_tokens}``
    and ``seq_ppl_median`` (median of per-trace perplexities).
    """
    if not nlls:
        raise ValueError("nlls: empty")
    sums, counts = np.zeros(4), np.zeros(4, dtype=np.int64)
    for x in nlls:
        q = quarter_index(len(x))
        np.add.at(sums, q, x)
        np.add.at(counts, q, 1)
    n = int(counts.sum())
    total = float(sums.sum())
    quarters = {}
    for k, name in enumerate(QUARTERS):
        m = sums[k] / counts[k] if counts[k] else float("nan")
        quarters[name] = {"ppl": float(np.exp(m)), "nll": float(m), "n_tokens": int(counts[k])}
    seq = [float(np.exp(x.mean())) for x in nlls if len(x)]
    return {"ppl": float(np.exp(total / n)) if n else float("nan"), "nll": total / n if n else float("nan"),
            "n_tokens": n, "n_seqs": len(nlls), "quarters": quarters,
            "seq_ppl_median": float(np.median(seq)) if seq else float("nan")}


def perplexity(model, tok, prompts: Sequence[str], solutions: Sequence[str], batch_size: int = 16,
               max_len: int = 1024) -> dict:
    """``model``'s perplexity on ``solutions`` given ``prompts`` (see :func:`perplexity_from_nll`)."""
    return perplexity_from_nll(solution_token_nll(model, tok, prompts, solutions, batch_size, max_len))


def token_shares(texts: Sequence[str], tokenize: Callable[[str], list[str]] = str.split) -> dict[str, float]:
    """Share of each token among all tokens of ``texts``."""
    c = Counter(t for text in texts for t in tokenize(text))
    n = sum(c.values())
    if n == 0:
        raise ValueError("texts: no tokens")
    return {k: v / n for k, v in c.items()}


def token_shift(texts: Sequence[str], reference: Sequence[str], top: int = 15,
                symbolic: frozenset[str] | set[str] = SYMBOLIC_TOKENS,
                tokenize: Callable[[str], list[str]] = str.split) -> dict:
    """Token-frequency shift of ``texts`` relative to ``reference`` (e.g. the model's own samples).

    Returns ``top`` (the ``top`` tokens whose share changes most: ``token, share, ref_share, delta``),
    ``tv_distance`` (half the L1 distance between the two distributions), ``symbolic_share`` /
    ``ref_symbolic_share`` and ``mean_tokens`` / ``ref_mean_tokens`` (per text).
    """
    a, b = token_shares(texts, tokenize), token_shares(reference, tokenize)
    vocab = sorted(set(a) | set(b))  # a fixed order: float sums must not depend on the process's string hashing
    delta = {t: a.get(t, 0.0) - b.get(t, 0.0) for t in vocab}
    ranked = sorted(vocab, key=lambda t: (-abs(delta[t]), t))[:top]
    return {
        "top": [{"token": t, "share": a.get(t, 0.0), "ref_share": b.get(t, 0.0), "delta": delta[t]} for t in ranked],
        "tv_distance": 0.5 * sum(abs(v) for v in delta.values()),
        "symbolic_share": sum(a.get(t, 0.0) for t in sorted(symbolic)),
        "ref_symbolic_share": sum(b.get(t, 0.0) for t in sorted(symbolic)),
        "mean_tokens": float(np.mean([len(tokenize(t)) for t in texts])),
        "ref_mean_tokens": float(np.mean([len(tokenize(t)) for t in reference])),
    }


def semantic_preservation(problem: Problem, source: str, refined: str, strict: bool = False) -> float:
    """Share of ``source``'s information atoms kept in ``refined`` (``nan`` if ``source`` has none).

    Atoms are the quantities a trace states correctly (:attr:`Verdict.atoms`); with ``strict`` an atom
    is the step's content as written (quantity, operands in their order, result).
    """
    if strict:
        src = set(valid_content(problem, source).items())
        ref = set(valid_content(problem, refined).items())
    else:
        src, ref = set(verify(problem, source).atoms), set(verify(problem, refined).atoms)
    return len(src & ref) / len(src) if src else float("nan")


FLAW_KINDS = FLAWS + ("missing", "no_steps")
"""Why a right answer is not a valid derivation: a step's first failing check (:data:`FLAWS`), a needed
quantity never stated (``missing``), or no step at all (``no_steps``)."""


def flaw_profile(verdicts: Sequence[Verdict]) -> dict:
    """The flaws behind right answers: among the traces with the correct answer (``n_correct``), the share with
    at least one flaw (``flawed_share``: not fully valid) and, per kind of :data:`FLAW_KINDS`, the share with a
    flaw of that kind (a trace can have several). NaN shares when no trace is correct, and in a world without a
    step checker (a hub verdict has no ``steps``): there a right answer cannot be told from a valid derivation."""
    corr = [v for v in verdicts if v.correct]
    n = len(corr)
    checked = all(hasattr(v, "steps") for v in corr)

    def share(pred) -> float:
        return sum(map(pred, corr)) / n if n and checked else float("nan")

    kinds = {k: share(lambda v, k=k: any(st.flaw == k for st in v.steps)) for k in FLAWS}
    kinds["missing"] = share(lambda v: len(v.atoms) < v.n_derived)
    kinds["no_steps"] = share(lambda v: v.n_steps == 0)
    return {"n_correct": n, "flawed_share": share(lambda v: not v.all_valid), "by_kind": kinds}


def set_quality(items: Sequence[Item], solutions: Sequence[str]) -> dict:
    """Checker statistics of a set: ``all_valid, correct`` (shares), ``step_validity`` and ``atom_coverage``
    (means; atoms stated / derived quantities; NaN in a world without step checking), ``dialects`` (shares) and
    ``flaws`` (:func:`flaw_profile`)."""
    if len(items) != len(solutions):
        raise ValueError(f"solutions: expected one per problem ({len(items)}), got {len(solutions)}")
    if not items:
        raise ValueError("problems: empty")
    vs = [it.check(s) for it, s in zip(items, solutions)]
    dial = Counter(v.dialect or "none" for v in vs)
    graphs = all(it.problem is not None for it in items)
    return {
        "all_valid": float(np.mean([v.all_valid for v in vs])),
        "correct": float(np.mean([v.correct for v in vs])),
        "step_validity": float(np.mean([v.step_validity for v in vs])),
        "atom_coverage": float(np.mean([len(v.atoms) / max(it.problem.steps, 1) for it, v in zip(items, vs)]))
        if graphs else float("nan"),
        "dialects": {d: c / len(vs) for d, c in sorted(dial.items())},
        "flaws": flaw_profile(vs),
    }


def preservation_summary(problems: Sequence[Problem], sources: Sequence[str], refined: Sequence[str],
                         strict: bool = False) -> dict:
    """Mean :func:`semantic_preservation` over traces with at least one atom (``mean, n, n_undefined``)."""
    x = np.array([semantic_preservation(p, s, r, strict) for p, s, r in zip(problems, sources, refined)])
    ok = ~np.isnan(x)
    return {"mean": float(x[ok].mean()) if ok.any() else float("nan"), "n": int(ok.sum()), "n_undefined": int((~ok).sum())}


def analyze_variants(model, tok, sets: Mapping[str, object], problems: Sequence[Item], own_samples: Sequence[str],
                     *, source: str = "slm_rft", batch_size: int = 16, max_len: int = 1024, top: int = 15) -> dict:
    """Per variant set (``Dataset`` or dict with ``pid, prompt, solution``): perplexity (global and by
    quarter) under ``model``, token shift vs ``own_samples``, checker quality and (for every set other
    than ``source``, where the world knows information atoms) semantic preservation of the ``source``
    set's atoms, strict and not."""
    by_pid = {p.pid: p for p in problems}
    out = {}
    src = None
    if source in sets:
        src = dict(zip(sets[source]["pid"], sets[source]["solution"]))
    for name, ds in sets.items():
        pids, prompts, sols = list(ds["pid"]), list(ds["prompt"]), list(ds["solution"])
        missing = [p for p in pids if p not in by_pid]
        if missing:
            raise ValueError(f"sets.{name}: pids not among the problems, e.g. {missing[:3]}")
        probs = [by_pid[p] for p in pids]
        rec = {
            "perplexity": perplexity(model, tok, prompts, sols, batch_size, max_len),
            "token_shift": token_shift(sols, own_samples, top=top),
            "quality": set_quality(probs, sols),
        }
        if src is not None and name != source and all(it.problem is not None for it in probs):
            srcs, graphs = [src[p] for p in pids], [it.problem for it in probs]
            rec["preservation"] = preservation_summary(graphs, srcs, sols)
            rec["preservation_strict"] = preservation_summary(graphs, srcs, sols, strict=True)
        out[name] = rec
    return out


__all__ = ["FLAW_KINDS", "QUARTERS", "SYMBOLIC_TOKENS", "analyze_variants", "flaw_profile", "perplexity", "perplexity_from_nll",
           "preservation_summary", "quarter_index", "semantic_preservation", "set_quality", "solution_token_nll", "solution_token_nll_ids",
           "token_shares", "token_shift"]
