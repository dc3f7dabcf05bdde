"""A reward model trained as reward models are in practice: Bradley-Terry on (correct, incorrect) pairs.

The RM is an ``AutoModelForSequenceClassification`` (``num_labels=1``) reading
``<bos> {problem} <sol> {solution} <cls>`` and scoring at the last token. It is
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
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, GPTNeoXConfig, LlamaConfig, Qwen2Config, Qwen3Config
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from ..evaluate import bootstrap_ci
from ..models.data import encode
from ..params import ModelParams, TrainParams
from ..world.dialects import SMALL_DIALECTS, render_solution
from ..world.problems import Problem
from ..world.tokenizer import BOS, SOL
from ..world.verifier import verify
from .oracle import MISTAKE_KINDS, make_draft, text_dialect
from .rejection import pid_rng

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


def build_reward_model(spec: ModelParams, tok, seed: int):
    """A freshly initialised ``*ForSequenceClassification`` (``num_labels=1``) of ``spec.arch`` sized by ``spec``."""
    common = dict(vocab_size=len(tok), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                  num_attention_heads=spec.heads, intermediate_size=spec.intermediate, max_position_embeddings=512,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                  num_labels=1)
    kv = spec.kv_heads or spec.heads
    if spec.arch == "llama":
        cfg = LlamaConfig(num_key_value_heads=kv, **common)
    elif spec.arch == "qwen2":
        cfg = Qwen2Config(num_key_value_heads=kv, **common)
    elif spec.arch == "qwen3":
        cfg = Qwen3Config(num_key_value_heads=kv, head_dim=spec.hidden // spec.heads, **common)
    elif spec.arch == "gpt_neox":
        cfg = GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, **common)
    else:  # pragma: no cover - rejected by params validation
        raise ValueError(f"spec.arch: unknown {spec.arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(cfg)
    if model.config.pad_token_id is None:  # pragma: no cover - set above
        raise ValueError("tok: needs a pad token")
    return model


def rm_ids(tok, problem_text: str, solution: str, max_len: int = 512) -> list[int]:
    """``<bos> {problem} <sol> {solution} <cls>``; a long solution is cut so ``<cls>`` stays last."""
    prompt = encode(tok, f"{BOS} {problem_text} {SOL}")
    sol = encode(tok, solution)
    cls = tok.convert_tokens_to_ids(CLS)
    if cls is None or cls == tok.unk_token_id:
        cls = tok.eos_token_id
    budget = max(0, max_len - len(prompt) - 1)
    return (prompt + sol[:budget])[: max_len - 1] + [cls]


def _batch(seqs: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": att}


def _rewards(model, seqs: list[list[int]], pad_id: int) -> torch.Tensor:
    return model(**_batch(seqs, pad_id)).logits.squeeze(-1).float()


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry pairwise loss, mean of ``-logsigmoid(r_chosen - r_rejected)``."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


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
        losses.append(-F.logsigmoid(rc - rr))
        acc.append(rc > rr)
    return {"loss": float(torch.cat(losses).mean()), "accuracy": float(torch.cat(acc).float().mean()), "n": len(ids)}


def train_reward_model(model, tok, problems: Sequence[Problem], pool: RMPool | Sequence[RMPair], cfg: TrainParams, *,
                       seed: int, eval_pairs: Sequence[RMPair] | None = None, on_log=None) -> dict:
    """Train ``model`` in place with the Bradley-Terry loss for ``cfg.steps`` steps (AdamW, warmup + cosine,
    gradient clipping; batches of ``cfg.batch_size`` pairs, a pure function of ``(seed, step)``).

    Returns ``steps, loss_before, loss_after, accuracy_before, accuracy_after`` (on ``eval_pairs``,
    default the training pairs), ``final_loss`` (last batch), ``wall_s``, ``pairs_per_s``.
    ``on_log(step, loss)`` is called every ``cfg.log_every`` steps.
    """
    from ..models.train import batch_indices

    pairs = list(pool.pairs if isinstance(pool, RMPool) else pool)
    if not pairs:
        raise ValueError("pool: no pairs")
    ev = list(eval_pairs) if eval_pairs is not None else pairs
    before = pairwise_eval(model, tok, problems, ev, max_len=cfg.max_len)
    ids = _pair_ids(tok, {p.pid: p for p in problems}, pairs, cfg.max_len)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, cfg.warmup, cfg.steps, min_lr_rate=cfg.min_lr_ratio)
    model.train()
    t0, last = time.perf_counter(), float("nan")
    for step in range(cfg.steps):
        idx = batch_indices(len(ids), cfg.batch_size, step, seed)
        chunk = [ids[i] for i in idx]
        r = _rewards(model, [c for c, _ in chunk] + [rj for _, rj in chunk], tok.pad_token_id)
        loss = bt_loss(r[: len(chunk)], r[len(chunk) :])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        last = float(loss)
        if not math.isfinite(last):
            raise FloatingPointError(f"[reward] loss is {last} at step {step}; lower the learning rate")
        if on_log is not None and (step + 1) % cfg.log_every == 0:
            on_log(step + 1, last)
    wall = time.perf_counter() - t0
    model.eval()
    after = pairwise_eval(model, tok, problems, ev, max_len=cfg.max_len)
    return {"steps": cfg.steps, "loss_before": before["loss"], "loss_after": after["loss"],
            "accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"], "final_loss": last,
            "wall_s": wall, "pairs_per_s": cfg.steps * cfg.batch_size / wall if wall > 0 else float("nan")}


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


__all__ = ["CLS", "PoolComposition", "RMPair", "RMPool", "bt_loss", "build_reward_model", "build_rm_pool",
           "pairwise_eval", "rm_ids", "score", "score_summary", "train_reward_model", "world_sources"]
