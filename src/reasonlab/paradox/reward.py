"""A reward model trained as reward models are in practice: Bradley-Terry on (correct, incorrect) pairs.

The RM is an ``AutoModelForSequenceClassification`` (``num_labels=1``) reading
``<bos> {problem} <sol> {solution} <cls>`` and scoring at the last token (a released reward model,
the paper profile's, reads the problem and solution as a chat through its tokenizer's template,
:func:`rm_ids`). It is
trained on pairs of the same problem (chosen = a correct solution, rejected = an
incorrect one) with ``-logsigmoid(r_chosen - r_rejected)``. It never sees a style
label: the only supervision is correct vs incorrect. What it learns about style
comes from the *composition of the pool* alone, which is a parameter
(:class:`PoolComposition`): by default, as in practice, correct solutions come
mostly from the strong model (80 % oracle dialect, 20 % small-model dialects) and
incorrect ones mostly from the small models (80 % corrupted small-model drafts,
20 % corrupted oracle-dialect drafts).

Sources are named collections of candidate solutions (``pid -> [texts]``); a
candidate's label is ``verify(problem, text).all_valid``. :func:`world_sources`
builds the world-generated ones (``oracle``, ``small``, ``oracle_corrupted``,
``small_corrupted``); real samples (e.g. the small models' failed rejection samples,
the oracle's synth outputs) can be added as further sources.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..evaluate import bootstrap_ci
from ..models.data import encode
from ..models.losses import bt_loss
from ..models.batching import pad_batch
from ..models.train import to_model_device, train
from ..models.zoo import load_scorer, load_tokenizer, model_source
from ..rejection import pid_rng
from ..schema import TrainParams
from ..world.dialects import SMALL_DIALECTS, render_solution
from ..world.problems import Problem
from ..world.tokenizer import BOS, SOL
from ..world.verifier import verify
from .config import MISTAKE_KINDS
from .drafts import make_draft
from .oracle import text_dialect

CLS = "<cls>"


@dataclass(frozen=True)
class PoolComposition:
    """How many pairs and which sources their chosen/rejected sides come from (shares summing to 1)."""

    n_pairs: int = 512
    chosen: Mapping[str, float] = field(default_factory=lambda: {"oracle": 0.8, "small": 0.2})
    rejected: Mapping[str, float] = field(default_factory=lambda: {"small_corrupted": 0.8, "oracle_corrupted": 0.2})

    def __post_init__(self):
        if self.n_pairs < 1:
            raise ValueError(f"composition.n_pairs must be >= 1, got {self.n_pairs}")
        for side in ("chosen", "rejected"):
            shares = getattr(self, side)
            if not shares:
                raise ValueError(f"composition.{side}: empty")
            for k, v in shares.items():
                if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                    raise ValueError(f"composition.{side}.{k}: share must be in [0, 1], got {v!r}")
            if abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(f"composition.{side}: shares must sum to 1, got {sum(shares.values()):.4f}")

    @classmethod
    def from_dict(cls, d: Mapping) -> "PoolComposition":
        bad = set(d) - {"n_pairs", "chosen", "rejected"}
        if bad:
            raise ValueError(f"composition: unknown keys {sorted(bad)}")
        return cls(**{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in d.items()})


@dataclass(frozen=True)
class RMPair:
    pid: str
    chosen: str
    rejected: str
    chosen_source: str
    rejected_source: str


@dataclass
class RMPool:
    """The pairs and the realised composition: ``composition[side][source]`` (share of pairs) and
    ``dialects[side][dialect]`` (share of pairs, by the dialect of the text)."""

    pairs: list[RMPair]
    composition: dict[str, dict[str, float]]
    dialects: dict[str, dict[str, float]]


def _counts(shares: Mapping[str, float], n: int) -> dict[str, int]:
    """Largest-remainder rounding of ``shares * n`` (exact total ``n``; each off by < 1)."""
    raw = {k: v * n for k, v in shares.items()}
    out = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[: n - sum(out.values())]:
        out[k] += 1
    return out


def world_sources(problems: Sequence[Problem], seed: int, *, small_dialects: Sequence[str] = SMALL_DIALECTS,
                  max_value: int = 40, kinds: Sequence[str] = MISTAKE_KINDS) -> dict[str, dict[str, list[str]]]:
    """World-generated candidate sources, ``source -> pid -> texts``:

    ``oracle`` (correct, oracle dialect), ``small`` (correct, each small dialect),
    ``oracle_corrupted`` / ``small_corrupted`` (one draft per mistake kind, with a random dialect).
    """
    out: dict[str, dict[str, list[str]]] = {"oracle": {}, "small": {}, "oracle_corrupted": {}, "small_corrupted": {}}
    for p in problems:
        out["oracle"][p.pid] = [render_solution(p, "oracle")]
        out["small"][p.pid] = [render_solution(p, d) for d in small_dialects]
        for src, dialects in (("oracle_corrupted", ["oracle"]), ("small_corrupted", list(small_dialects))):
            rng = pid_rng(seed, p.pid, src)
            texts = []
            for k in kinds:
                d = make_draft(p, dialects[int(rng.integers(len(dialects)))], k, rng, max_value)
                if d is not None:
                    texts.append(d.text)
            out[src][p.pid] = texts
    return out


def build_rm_pool(problems: Sequence[Problem], sources: Mapping[str, Mapping[str, Sequence[str]]],
                  composition: PoolComposition | Mapping = PoolComposition(), seed: int = 0) -> RMPool:
    """Pairs of the same problem, chosen from the correct candidates of the chosen-side sources and
    rejected from the incorrect candidates of the rejected-side sources, in the exact proportions of
    ``composition`` (largest-remainder rounding). Problems are cycled through in a seeded order so they
    are used as evenly as the sources allow. Raises ``ValueError`` naming a source that is missing
    or has no usable candidate."""
    comp = composition if isinstance(composition, PoolComposition) else PoolComposition.from_dict(composition)
    by_pid = {p.pid: p for p in problems}
    if not by_pid:
        raise ValueError("problems: empty")
    for side in ("chosen", "rejected"):
        for s, share in getattr(comp, side).items():
            if share > 0 and s not in sources:
                raise ValueError(f"composition.{side}.{s}: no such source; given {sorted(sources)}")
    # label every candidate once: correct (all steps valid, right answer) or not
    good: dict[str, dict[str, list[str]]] = {}
    bad: dict[str, dict[str, list[str]]] = {}
    used = set(comp.chosen) | set(comp.rejected)
    for s in used:
        if s not in sources:
            continue
        good[s], bad[s] = {}, {}
        for pid, texts in sources[s].items():
            p = by_pid.get(pid)
            if p is None:
                continue
            for t in texts:
                (good if verify(p, t).all_valid else bad)[s].setdefault(pid, []).append(t)
    rng = np.random.default_rng([seed, 7])
    c_counts, r_counts = _counts(comp.chosen, comp.n_pairs), _counts(comp.rejected, comp.n_pairs)
    c_side = [s for s, k in c_counts.items() for _ in range(k)]
    r_side = [s for s, k in r_counts.items() for _ in range(k)]
    rng.shuffle(c_side)
    rng.shuffle(r_side)
    order = [p.pid for p in problems]
    rng.shuffle(order)
    cursor = 0  # one pointer cycling through the shuffled problems: problems are used evenly
    pairs = []
    for sc, sr in zip(c_side, r_side):
        for k in range(len(order)):
            pid = order[(cursor + k) % len(order)]
            if good[sc].get(pid) and bad[sr].get(pid):
                cursor = (cursor + k + 1) % len(order)
                break
        else:
            raise ValueError(f"no problem has both a correct candidate in source {sc!r} and an incorrect one in {sr!r}")
        ch = good[sc][pid][int(rng.integers(len(good[sc][pid])))]
        rj = bad[sr][pid][int(rng.integers(len(bad[sr][pid])))]
        pairs.append(RMPair(pid, ch, rj, sc, sr))
    n = len(pairs)
    comp_real = {
        "chosen": {s: sum(p.chosen_source == s for p in pairs) / n for s in comp.chosen},
        "rejected": {s: sum(p.rejected_source == s for p in pairs) / n for s in comp.rejected},
    }
    dial = {"chosen": Counter(), "rejected": Counter()}
    for p in pairs:
        dial["chosen"][text_dialect(by_pid[p.pid], p.chosen) or "none"] += 1
        dial["rejected"][text_dialect(by_pid[p.pid], p.rejected) or "none"] += 1
    dialects = {side: {d: c / n for d, c in sorted(cnt.items())} for side, cnt in dial.items()}
    return RMPool(pairs, comp_real, dialects)


# --------------------------------------------------------------------------- model


def rm_ids(tok, problem_text: str, solution: str, max_len: int = 512) -> list[int]:
    """The reward model's input: ``<bos> {problem} <sol> {solution} <cls>`` (a long solution is cut so
    ``<cls>`` stays last); for a reward model whose tokenizer has a chat template, the chat
    ``[user: problem, assistant: solution]`` (cut to its last ``max_len`` tokens)."""
    if getattr(tok, "chat_template", None) is not None:
        ids = tok.apply_chat_template([{"role": "user", "content": problem_text},
                                       {"role": "assistant", "content": solution}], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, Mapping) else ids
        return list(ids)[-max_len:]
    prompt = encode(tok, f"{BOS} {problem_text} {SOL}")
    sol = encode(tok, solution)
    cls = tok.convert_tokens_to_ids(CLS)
    if cls is None or cls == tok.unk_token_id:
        cls = tok.eos_token_id
    budget = max(0, max_len - len(prompt) - 1)
    return (prompt + sol[:budget])[: max_len - 1] + [cls]


def _rewards(model, seqs: list[list[int]], pad_id: int) -> torch.Tensor:
    return model(**to_model_device(pad_batch(seqs, pad_id), model)).logits.squeeze(-1).float()


def _pair_ids(tok, by_pid: Mapping[str, Problem], pairs: Sequence[RMPair], max_len: int):
    out = []
    for pr in pairs:
        p = by_pid.get(pr.pid)
        if p is None:
            raise ValueError(f"pairs: pid {pr.pid!r} is not among the problems")
        out.append((rm_ids(tok, p.text, pr.chosen, max_len), rm_ids(tok, p.text, pr.rejected, max_len)))
    return out


@torch.inference_mode()
def pairwise_eval(model, tok, problems: Sequence[Problem], pairs: Sequence[RMPair], batch_size: int = 64,
                  max_len: int = 512) -> dict:
    """Mean Bradley-Terry loss and pairwise accuracy (``r_chosen > r_rejected``) of ``model`` on ``pairs``."""
    if not pairs:
        raise ValueError("pairs: empty")
    model.eval()
    ids = _pair_ids(tok, {p.pid: p for p in problems}, pairs, max_len)
    losses, acc = [], []
    for s in range(0, len(ids), batch_size):
        chunk = ids[s : s + batch_size]
        r = _rewards(model, [c for c, _ in chunk] + [r for _, r in chunk], tok.pad_token_id)
        rc, rr = r[: len(chunk)], r[len(chunk) :]
        losses.append(bt_loss(rc, rr))
        acc.append(rc > rr)
    return {"loss": float(torch.cat(losses).mean()), "accuracy": float(torch.cat(acc).float().mean()), "n": len(ids)}


def pair_batch_loss(pad_id: int):
    """The training loop's batch loss for pairs ``(chosen_ids, rejected_ids)``: summed Bradley-Terry loss."""

    def batch_loss(model, pairs):
        seqs = [c for c, _ in pairs] + [rj for _, rj in pairs]
        r = _rewards(model, seqs, pad_id)
        n = len(pairs)
        return bt_loss(r[:n], r[n:]).sum(), n, sum(map(len, seqs)), len(seqs) * max(map(len, seqs))

    return batch_loss


def train_reward_model(model, tok, problems: Sequence, pool: RMPool | Sequence[RMPair], cfg: TrainParams, *,
                       seed: int, eval_pairs: Sequence[RMPair] | None = None, ckpt_dir=None, live_dir=None) -> dict:
    """Train ``model`` in place with the Bradley-Terry loss through the one training loop
    (:func:`reasonlab.models.train.train`: AdamW, warmup + cosine, clipping, batches of ``cfg.batch_size``
    pairs a pure function of ``(seed, step)``, resumable from ``ckpt_dir``).

    Returns ``steps, loss_before, loss_after, accuracy_before, accuracy_after`` (on ``eval_pairs``,
    default the training pairs), ``final_loss`` (last batch), ``wall_s``, ``pairs_per_s``.
    """
    pairs = list(pool.pairs if isinstance(pool, RMPool) else pool)
    if not pairs:
        raise ValueError("pool: no pairs")
    ev = list(eval_pairs) if eval_pairs is not None else pairs
    before = pairwise_eval(model, tok, problems, ev, max_len=cfg.max_len)
    ids = _pair_ids(tok, {p.pid: p for p in problems}, pairs, cfg.max_len)
    stats = train(model, ids, cfg, seed=seed, batch_loss=pair_batch_loss(tok.pad_token_id), ckpt_dir=ckpt_dir,
                  live_dir=live_dir, desc="reward model")
    after = pairwise_eval(model, tok, problems, ev, max_len=cfg.max_len)
    wall = stats["wall_s"]
    return {"steps": stats["steps"], "loss_before": before["loss"], "loss_after": after["loss"],
            "accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"],
            "final_loss": stats["final_loss"], "wall_s": wall,
            "pairs_per_s": stats["target_tokens"] / wall if wall > 0 else float("nan")}


@torch.inference_mode()
def score(model, tok, problems: Sequence[Problem], solutions: Sequence[str], batch_size: int = 64,
          max_len: int = 512) -> np.ndarray:
    """Reward of ``solutions[i]`` as a solution of ``problems[i]`` (float array, one per solution)."""
    if len(problems) != len(solutions):
        raise ValueError(f"solutions: expected one per problem ({len(problems)}), got {len(solutions)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    seqs = [rm_ids(tok, p.text, s, max_len) for p, s in zip(problems, solutions)]
    out = []
    for s in range(0, len(seqs), batch_size):
        out.append(_rewards(model, seqs[s : s + batch_size], tok.pad_token_id))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def score_summary(scores, conf: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean reward with a percentile-bootstrap interval: ``mean, ci95 (lo, hi), sd, n``."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        raise ValueError("scores: empty")
    lo, hi = bootstrap_ci(x, n_boot=n_boot, seed=seed, conf=conf)
    return {"mean": float(x.mean()), "ci95": (lo, hi), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0, "n": int(x.size)}


def load_reward_model(path: str | Path):
    """``(model, tokenizer)`` of the reward model in ``path`` (in the paper profile a hub id in its ``meta.json``)."""
    src = model_source(path)
    return load_scorer(src), load_tokenizer(src)


__all__ = ["CLS", "PoolComposition", "RMPair", "RMPool", "build_rm_pool", "load_reward_model", "pair_batch_loss",
           "pairwise_eval", "rm_ids", "score", "score_summary", "train_reward_model", "world_sources"]
