"""Stage ``paradox_reward_model``: the Bradley-Terry reward model on a pool of the configured composition
(paper profile: the released reward model).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import wilson_ci
from ...io import fresh_tmp_dir, params_hash, replace_dir, setup_threads, write_json
from ...models.train import no_curves
from ...models.zoo import build_scorer, load_tokenizer, save_model_atomic, write_hub_pointer
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..rejection import failed_samples, load_rft
from ..reward import (POOL_DIALECTS, REJECTED_KINDS, PoolComposition, build_rm_pool, dialect_only_accuracy,
                      dialect_scorer, grouped_accuracy, pairwise_eval, pool_candidates, train_reward_model)
from ..roles import role_items


def _merge_failed(sample_dirs: Sequence[Path], name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in sample_dirs:
        for pid, texts in failed_samples(load_rft(d / name)).items():
            out.setdefault(pid, []).extend(texts)
    return out


def _candidates(problems, sample_dirs, name: str, seed: int, max_value: int, uses_failed: bool):
    failed = _merge_failed(sample_dirs, name) if uses_failed else None
    if uses_failed and not failed:
        raise RuntimeError(f"paradox.reward.pool.rft_failed_share > 0 but the families produced no failed sample "
                           f"({name}; raise paradox.sample.reward_problems)")
    return pool_candidates(problems, seed, failed=failed, max_value=max_value)


def _pool_summary(pool, candidates) -> dict:
    return {"dialects": pool.dialects, "rejected_kinds": pool.kinds, "cross_dialect_share": pool.cross_dialect_share,
            "n_pairs": len(pool.pairs), "n_problems": len({p.pid for p in pool.pairs}),
            "candidates": {"valid": sum(c.valid for c in candidates),
                           **{k: sum(c.kind == k for c in candidates) for k in REJECTED_KINDS},
                           "no_pool_dialect": sum(c.dialect not in POOL_DIALECTS for c in candidates)}}


def train_reward(P: ParadoxParams, world_dir: str | Path, samples_root: str | Path, out: str | Path,
                 live_dir: str | Path | None = None, ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``paradox_reward_model``: build the pair pool, train the reward model, save both.

    Training pairs are built on reward-role problems, held-out pairs (same composition) on the RFT
    problems; the ``rft_failed`` answers are every family's complete but incorrect rejection samples
    (``samples_root/<family>/reward.json``, and ``rft.json`` for the held-out pairs). Writes the model
    and ``pool.json`` (the realised composition and the pairs) to ``out``. Reports the pairwise accuracy on
    the held-out pairs overall, within each dialect (``within_dialect_acc``), across dialects by direction
    (``cross_dialect_acc``, ``"<chosen> over <rejected>"``: a reward model that prefers one dialect is right
    more often when that dialect is the chosen one) and by rejected kind, and
    ``dialect_detector_acc``: the held-out accuracy of the dialect-only scorer fit on the training pool
    (50 % on a pool balanced by dialect).
    """
    setup_threads()
    pc, rc = P.paradox, P.paradox.reward
    if rc.model.hub_id:  # paper profile: a released reward model is used as is
        no_curves(live_dir)
        return write_hub_pointer(out, rc.model.hub_id)
    task = open_task(world_dir)
    task.require_graphs("paradox_reward_model (a reward model trained on world-generated pairs)")
    sample_dirs = [Path(samples_root) / f for f in pc.families]
    requested = rc.pool.model_dump(exclude={"eval_pairs"})
    comp = PoolComposition.from_dict(requested)
    uses_failed = comp.rft_failed_share > 0
    tok = load_tokenizer(Path(world_dir) / "tokenizer")
    rm_items = role_items(task, "reward", pc.problems.reward, pc.problems.seed)
    rm_probs = [it.problem for it in rm_items]
    cands = _candidates(rm_probs, sample_dirs, "reward.json", P.seed, P.world.max_value, uses_failed)
    pool = build_rm_pool(rm_probs, cands, comp, seed=P.seed)
    items = list(rm_items)
    eval_pool = None
    if rc.pool.eval_pairs:
        rft_items = role_items(task, "rft", pc.problems.rft, pc.problems.seed)
        rft_probs = [it.problem for it in rft_items]
        ev_cands = _candidates(rft_probs, sample_dirs, "rft.json", P.seed + 1, P.world.max_value, uses_failed)
        eval_pool = build_rm_pool(rft_probs, ev_cands, replace(comp, n_pairs=rc.pool.eval_pairs), seed=P.seed + 1)
        items += rft_items
    model = build_scorer(rc.model, tok, seed=P.seed)
    cfg = rc.train.resolve(len(pool.pairs))
    run = Run("paradox-reward-model", {
        "pool": params_hash([asdict(p) for p in pool.pairs]), "spec": rc.model_dump(), "seed": P.seed,
        "tokenizer": digest(Path(world_dir) / "tokenizer"),
        "eval": params_hash([asdict(p) for p in eval_pool.pairs]) if eval_pool else None}, ckpt_root)
    stats = run.train(model, lambda ck: train_reward_model(
        model, tok, items, pool, cfg, seed=P.seed, eval_pairs=eval_pool.pairs if eval_pool else None, ckpt_dir=ck,
        live_dir=live_dir), "reward model")
    train_eval = pairwise_eval(model, tok, items, pool.pairs, max_len=cfg.max_len)
    detector = dialect_scorer(pool.pairs)
    composition = {"requested": requested, **_pool_summary(pool, cands)}
    held = {}
    if eval_pool:
        ev = pairwise_eval(model, tok, items, eval_pool.pairs, max_len=cfg.max_len)
        wins = ev["wins"]
        held = {
            "heldout_accuracy": ev["accuracy"], "heldout_ci95": list(wilson_ci(sum(wins), len(wins))),
            "heldout_loss": ev["loss"], "heldout_pairs": len(eval_pool.pairs),
            "dialect_detector_acc": dialect_only_accuracy(detector, eval_pool.pairs),
            "within_dialect_acc": grouped_accuracy(
                eval_pool.pairs, wins, lambda p: p.chosen_dialect if p.chosen_dialect == p.rejected_dialect else None),
            "cross_dialect_acc": grouped_accuracy(
                eval_pool.pairs, wins,
                lambda p: f"{p.chosen_dialect} over {p.rejected_dialect}" if p.chosen_dialect != p.rejected_dialect else None),
            "heldout_by_rejected_kind": grouped_accuracy(eval_pool.pairs, wins, lambda p: p.rejected_kind),
            "heldout_pool": _pool_summary(eval_pool, ev_cands),
        }
    tmp = fresh_tmp_dir(out)
    save_model_atomic(model, tok, tmp, {"model": "reward_model", "spec": rc.model.model_dump(),
                                        "train": rc.train.model_dump(), "seed": P.seed, "pool": composition})
    write_json(tmp / "pool.json", {**composition, "pairs": [asdict(p) for p in pool.pairs],
                                   "eval_pairs": [asdict(p) for p in eval_pool.pairs] if eval_pool else []})
    replace_dir(tmp, out)
    shutil.rmtree(run.dir, ignore_errors=True)
    return {"pool": composition, "train_accuracy": train_eval["accuracy"], "train_loss": train_eval["loss"],
            "dialect_detector_train_acc": dialect_only_accuracy(detector, pool.pairs),
            "heldout_accuracy": None, "heldout_loss": None, "heldout_pairs": 0, "dialect_detector_acc": None,
            **held, **{k: stats[k] for k in ("steps", "final_loss", "wall_s")}}
