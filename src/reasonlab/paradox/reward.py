"""A reward model trained as reward models are in practice: Bradley-Terry on (correct, incorrect) pairs.

The RM is an ``AutoModelForSequenceClassification`` (``num_labels=1``) reading
``<bos> {problem} <sol> {solution} <cls>`` and scoring at the last token (a released reward model,
the paper profile's, reads the problem and solution as a chat through its tokenizer's template,
:func:`rm_ids`). It is
trained on pairs of the same problem (chosen = a fully valid solution, rejected = an
invalid one) with ``-logsigmoid(r_chosen - r_rejected)``. It never sees a style
label: the only supervision is valid vs invalid. What it could learn about style
comes from the *composition of the pool* alone, which is a parameter
(:class:`PoolComposition`). By default the pool is balanced by dialect: chosen and
rejected answers are in the oracle's dialect equally often, and every pair is within
one dialect, so a scorer that reads only the dialect ties on every pair
(:func:`dialect_only_accuracy`, 50 %) and what the model learns is validity. Raising
the chosen side's oracle share above the rejected side's leaks the dialect into the
label, as a pool of mostly strong-model correct answers does in practice.

Rejected answers are world drafts with one realistic mistake, among them hard
negatives (the right answer with an invalid step) in every dialect, and the families'
real failed rejection samples (:func:`pool_candidates`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..evaluate import bootstrap_ci, wilson_ci
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


POOL_DIALECTS = ("oracle",) + tuple(SMALL_DIALECTS)
REJECTED_KINDS = ("hard", "wrong", "rft_failed")
"""Kinds of rejected answers: ``hard`` a world draft with the right answer and an invalid step (a skipped step:
a hard negative), ``wrong`` a world draft with a wrong or missing answer, ``rft_failed`` one of the families'
real incorrect rejection samples (small-model dialects only)."""


@dataclass(frozen=True)
class PoolComposition:
    """How the pairs are made: ``n_pairs``; the share of the chosen and of the rejected answers written in the
    oracle's dialect (the rest split evenly over the small-model dialects); the share of every dialect's
    rejected answers that are hard negatives, and of every small dialect's that are the families' failed
    samples. Equal oracle shares balance the pool by dialect: every pair is within one dialect, so a scorer
    that sees only the dialect ties on every pair (50 %). Unequal ones leak the dialect into the label on
    ``|chosen - rejected|`` of the pairs.

    Pairs within one dialect leave the offset *between* dialects untrained (the Bradley-Terry loss does not
    change when one dialect's scores all move by a constant), so a cross-dialect comparison of scores is then
    not identified. ``cross_dialect_share`` (at least) of the pairs are across dialects: matched pairs have
    their rejected dialects rotated among themselves, which keeps both sides' dialect shares, so with equal
    oracle shares every dialect is chosen as often as it is rejected and the dialect detector still ties."""

    n_pairs: int = 512
    chosen_oracle_share: float = 0.5
    rejected_oracle_share: float = 0.5
    hard_share: float = 0.25
    rft_failed_share: float = 0.0
    cross_dialect_share: float = 0.0

    def __post_init__(self):
        if self.n_pairs < 1:
            raise ValueError(f"composition.n_pairs must be >= 1, got {self.n_pairs}")
        for k in ("chosen_oracle_share", "rejected_oracle_share", "hard_share", "rft_failed_share",
                  "cross_dialect_share"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"composition.{k}: share must be in [0, 1], got {v!r}")
        if self.hard_share + self.rft_failed_share > 1 + 1e-9:
            raise ValueError(f"composition: hard_share + rft_failed_share must be <= 1, got "
                             f"{self.hard_share} + {self.rft_failed_share}")

    @classmethod
    def from_dict(cls, d: Mapping) -> "PoolComposition":
        bad = set(d) - {f.name for f in fields(cls)}
        if bad:
            raise ValueError(f"composition: unknown keys {sorted(bad)}")
        return cls(**d)

    def dialect_shares(self, side: str) -> dict[str, float]:
        o = self.chosen_oracle_share if side == "chosen" else self.rejected_oracle_share
        return {"oracle": o, **{d: (1 - o) / len(SMALL_DIALECTS) for d in SMALL_DIALECTS}}

    def kind_shares(self, dialect: str) -> dict[str, float]:
        rft = 0.0 if dialect == "oracle" else self.rft_failed_share
        return {"hard": self.hard_share, "rft_failed": rft, "wrong": max(0.0, 1 - self.hard_share - rft)}


@dataclass(frozen=True)
class RMPair:
    pid: str
    chosen: str
    rejected: str
    chosen_dialect: str
    rejected_dialect: str
    rejected_kind: str


@dataclass(frozen=True)
class Candidate:
    """One candidate answer, labelled once: its dialect, whether it is fully valid (correct answer, every step
    valid) and its kind if it is not (:data:`REJECTED_KINDS`)."""

    pid: str
    text: str
    dialect: str | None
    valid: bool
    kind: str | None


@dataclass
class RMPool:
    """The pairs and the realised composition: ``dialects[side][dialect]`` (share of pairs) and
    ``kinds[dialect][kind]`` (share of that dialect's rejected answers)."""

    pairs: list[RMPair]
    dialects: dict[str, dict[str, float]]
    kinds: dict[str, dict[str, float]]
    cross_dialect_share: float


def _counts(shares: Mapping[str, float], n: int) -> dict[str, int]:
    """Largest-remainder rounding of ``shares * n`` (exact total ``n``; each off by < 1)."""
    raw = {k: v * n for k, v in shares.items()}
    out = {k: int(math.floor(v + 1e-9)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[: n - sum(out.values())]:
        out[k] += 1
    return out


def label_candidate(problem: Problem, text: str, source: str) -> Candidate:
    """Label ``text`` as a candidate answer to ``problem`` from ``source`` (``world`` or ``rft_failed``)."""
    v = verify(problem, text)
    dialect = text_dialect(problem, text)
    if v.all_valid:
        return Candidate(problem.pid, text, dialect, True, None)
    kind = "rft_failed" if source == "rft_failed" else ("hard" if v.correct else "wrong")
    return Candidate(problem.pid, text, dialect, False, kind)


def pool_candidates(problems: Sequence[Problem], seed: int, *, failed: Mapping[str, Sequence[str]] | None = None,
                    max_value: int, kinds: Sequence[str] = MISTAKE_KINDS) -> list[Candidate]:
    """Every candidate answer of ``problems``, labelled: per pool dialect the world's correct solution and one
    draft per mistake kind (seeded by ``(seed, pid, dialect)``), and the families' ``failed`` samples
    (``pid -> texts``; their dialect is the one they are written in)."""
    out = []
    for p in problems:
        for d in POOL_DIALECTS:
            out.append(label_candidate(p, render_solution(p, d), "world"))
            rng = pid_rng(seed, p.pid, f"pool-{d}")
            for k in kinds:
                dr = make_draft(p, d, k, rng, max_value)
                if dr is not None:
                    out.append(label_candidate(p, dr.text, "world"))
        for t in (failed or {}).get(p.pid, ()):
            out.append(label_candidate(p, t, "rft_failed"))
    return out


def _dialect_pairs(comp: PoolComposition, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``(chosen dialect, rejected dialect)`` of every pair: as many pairs within one dialect as the two sides'
    counts and ``cross_dialect_share`` allow, the rest across dialects in a seeded order; shuffled.

    To reach ``cross_dialect_share``, ``m`` matched pairs (spread over the dialects in proportion to their
    counts) are sorted by dialect, largest group first, and their rejected dialects rotated by the largest
    group's size: no pair stays matched unless one dialect holds more than half of the ``m``, and each dialect
    keeps its chosen and rejected counts."""
    c = _counts(comp.dialect_shares("chosen"), comp.n_pairs)
    r = _counts(comp.dialect_shares("rejected"), comp.n_pairs)
    same = {d: min(c[d], r[d]) for d in POOL_DIALECTS}
    c_left = [d for d in POOL_DIALECTS for _ in range(c[d] - same[d])]
    r_left = [d for d in POOL_DIALECTS for _ in range(r[d] - same[d])]
    rng.shuffle(c_left)
    rng.shuffle(r_left)
    across = list(zip(c_left, r_left))
    m = min(sum(same.values()), max(0, round(comp.cross_dialect_share * comp.n_pairs) - len(across)))
    if m:
        moved = _counts({d: same[d] / sum(same.values()) for d in POOL_DIALECTS}, m)
        chosen = sorted((d for d in POOL_DIALECTS for _ in range(moved[d])), key=lambda d: (-moved[d], d))
        k = max(moved.values())
        across += list(zip(chosen, chosen[k:] + chosen[:k]))
        same = {d: same[d] - moved[d] for d in POOL_DIALECTS}
    out = [(d, d) for d in POOL_DIALECTS for _ in range(same[d])] + across
    rng.shuffle(out)
    return out


def build_rm_pool(problems: Sequence[Problem], candidates: Sequence[Candidate],
                  composition: PoolComposition | Mapping = PoolComposition(), seed: int = 0) -> RMPool:
    """Pairs of the same problem in the exact dialect and kind counts of ``composition`` (largest-remainder
    rounding): chosen = a fully valid candidate in the pair's chosen dialect, rejected = an invalid one of the
    pair's rejected dialect and kind. Problems are cycled through in a seeded order so they are used as evenly
    as the candidates allow. Raises ``ValueError`` naming the dialect and kind that no problem can supply."""
    comp = composition if isinstance(composition, PoolComposition) else PoolComposition.from_dict(composition)
    if not problems:
        raise ValueError("problems: empty")
    known = {p.pid for p in problems}
    good: dict[str, dict[str, list[str]]] = {d: {} for d in POOL_DIALECTS}
    bad: dict[tuple[str, str], dict[str, list[str]]] = {(d, k): {} for d in POOL_DIALECTS for k in REJECTED_KINDS}
    for c in candidates:
        if c.pid not in known or c.dialect not in good:
            continue  # another problem's, or not in a pool dialect (e.g. unparsable)
        if c.valid:
            good[c.dialect].setdefault(c.pid, []).append(c.text)
        else:
            bad[(c.dialect, c.kind)].setdefault(c.pid, []).append(c.text)
    rng = np.random.default_rng([seed, 7])
    slots = _dialect_pairs(comp, rng)
    kinds_of: dict[str, list[str]] = {}
    for d in POOL_DIALECTS:
        n_d = sum(r == d for _, r in slots)
        ks = [k for k, m in _counts(comp.kind_shares(d), n_d).items() for _ in range(m)]
        rng.shuffle(ks)
        kinds_of[d] = ks
    order = [p.pid for p in problems]
    rng.shuffle(order)
    cursor = 0  # one pointer cycling through the shuffled problems: problems are used evenly
    pairs = []
    for cd, rd in slots:
        rk = kinds_of[rd].pop()
        g, b = good[cd], bad[(rd, rk)]
        for k in range(len(order)):
            pid = order[(cursor + k) % len(order)]
            if g.get(pid) and b.get(pid):
                cursor = (cursor + k + 1) % len(order)
                break
        else:
            raise ValueError(f"no problem has both a correct candidate in dialect {cd!r} and a rejected one of "
                             f"dialect {rd!r} and kind {rk!r}")
        pairs.append(RMPair(pid, g[pid][int(rng.integers(len(g[pid])))], b[pid][int(rng.integers(len(b[pid])))],
                            cd, rd, rk))
    n = len(pairs)
    dialects = {side: {d: sum(getattr(p, f"{side}_dialect") == d for p in pairs) / n for d in POOL_DIALECTS}
                for side in ("chosen", "rejected")}
    kinds = {}
    for d in POOL_DIALECTS:
        ks = [p.rejected_kind for p in pairs if p.rejected_dialect == d]
        kinds[d] = {k: (ks.count(k) / len(ks) if ks else 0.0) for k in REJECTED_KINDS}
    cross = sum(p.chosen_dialect != p.rejected_dialect for p in pairs) / n
    return RMPool(pairs, dialects, kinds, cross)


def dialect_scorer(pairs: Sequence[RMPair]) -> dict[str, float]:
    """The dialect-only scorer fit on ``pairs``: per dialect, (times chosen - times rejected) / times seen. It ranks
    dialects by how often the pool labels them chosen; it never reads a step."""
    seen, net = Counter(), Counter()
    for p in pairs:
        seen[p.chosen_dialect] += 1
        seen[p.rejected_dialect] += 1
        net[p.chosen_dialect] += 1
        net[p.rejected_dialect] -= 1
    return {d: net[d] / seen[d] for d in seen}


def dialect_only_accuracy(scorer: Mapping[str, float], pairs: Sequence[RMPair]) -> float:
    """Pairwise accuracy of a dialect-only ``scorer`` on ``pairs`` (a tie counts one half; an unseen dialect
    scores 0)."""
    if not pairs:
        raise ValueError("pairs: empty")
    wins = 0.0
    for p in pairs:
        a, b = scorer.get(p.chosen_dialect, 0.0), scorer.get(p.rejected_dialect, 0.0)
        wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / len(pairs)


def grouped_accuracy(pairs: Sequence[RMPair], wins: Sequence[bool], key) -> dict[str, dict]:
    """Pairwise accuracy with a Wilson 95 % interval per group ``key(pair)`` (``None``: the pair is left out)."""
    groups: dict[str, list[bool]] = {}
    for p, w in zip(pairs, wins):
        g = key(p)
        if g is not None:
            groups.setdefault(g, []).append(bool(w))
    return {g: {"accuracy": sum(ws) / len(ws), "ci95": list(wilson_ci(sum(ws), len(ws))), "n": len(ws)}
            for g, ws in sorted(groups.items())}


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
    """Mean Bradley-Terry loss and pairwise accuracy (``r_chosen > r_rejected``) of ``model`` on ``pairs``, and
    ``wins`` (per pair, whether the chosen answer scored higher)."""
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
    wins = torch.cat(acc)
    return {"loss": float(torch.cat(losses).mean()), "accuracy": float(wins.float().mean()), "n": len(ids),
            "wins": wins.tolist()}


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


__all__ = ["CLS", "POOL_DIALECTS", "REJECTED_KINDS", "Candidate", "PoolComposition", "RMPair", "RMPool",
           "build_rm_pool", "dialect_only_accuracy", "dialect_scorer", "grouped_accuracy", "label_candidate",
           "load_reward_model", "pair_batch_loss", "pairwise_eval", "pool_candidates", "rm_ids", "score",
           "score_summary", "train_reward_model"]
