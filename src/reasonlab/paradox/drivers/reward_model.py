"""Stage ``paradox_reward_model``: the Bradley-Terry reward model on a pool of the configured composition
(paper profile: the released reward model).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from ...checkpoint import CKPT_ROOT, Run, digest
from ...io import fresh_tmp_dir, params_hash, replace_dir, setup_threads, write_json
from ...models.train import no_curves
from ...models.zoo import build_scorer, load_tokenizer, save_model_atomic, write_hub_pointer
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..rejection import failed_samples, load_rft
from ..reward import PoolComposition, build_rm_pool, pairwise_eval, train_reward_model, world_sources
from ..roles import role_items


def _merge_failed(sample_dirs: Sequence[Path], name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in sample_dirs:
        for pid, texts in failed_samples(load_rft(d / name)).items():
            out.setdefault(pid, []).extend(texts)
    return out


def train_reward(P: ParadoxParams, world_dir: str | Path, samples_root: str | Path, out: str | Path,
                 live_dir: str | Path | None = None, ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``paradox_reward_model``: build the pair pool, train the reward model, save both.

    Training pairs are built on reward-role problems, held-out pairs (same composition) on the RFT
    problems; the ``rft_failed`` source is every family's complete but incorrect rejection samples
    (``samples_root/<family>/reward.json``, and ``rft.json`` for the held-out pairs). Writes the model
    and ``pool.json`` (the realised composition and the pairs) to ``out``.
    """
    setup_threads()
    pc, rc = P.paradox, P.paradox.reward
    if rc.model.hub_id:  # paper profile: a released reward model is used as is
        no_curves(live_dir)
        return write_hub_pointer(out, rc.model.hub_id)
    task = open_task(world_dir)
    task.require_graphs("paradox_reward_model (a reward model trained on world-generated pairs)")
    sample_dirs = [Path(samples_root) / f for f in pc.families]
    requested = {"n_pairs": rc.pool.n_pairs, "chosen": dict(rc.pool.chosen), "rejected": dict(rc.pool.rejected)}
    uses = {k for side in ("chosen", "rejected") for k, v in requested[side].items() if v > 0}
    tok = load_tokenizer(Path(world_dir) / "tokenizer")
    rm_items = role_items(task, "reward", pc.problems.reward, pc.problems.seed)
    rm_probs = [it.problem for it in rm_items]
    sources = world_sources(rm_probs, seed=P.seed, max_value=P.world.max_value)
    if "rft_failed" in uses:
        sources["rft_failed"] = _merge_failed(sample_dirs, "reward.json")
        if not sources["rft_failed"]:
            raise RuntimeError("paradox.reward.pool uses rft_failed but the families produced no failed sample on "
                               "reward-role problems (raise paradox.sample.reward_problems)")
    pool = build_rm_pool(rm_probs, sources, PoolComposition.from_dict(requested), seed=P.seed)
    items = list(rm_items)
    eval_pool = None
    if rc.pool.eval_pairs:
        rft_items = role_items(task, "rft", pc.problems.rft, pc.problems.seed)
        rft_probs = [it.problem for it in rft_items]
        ev_sources = world_sources(rft_probs, seed=P.seed + 1, max_value=P.world.max_value)
        if "rft_failed" in uses:
            ev_sources["rft_failed"] = _merge_failed(sample_dirs, "rft.json")
        eval_pool = build_rm_pool(rft_probs, ev_sources,
                                  PoolComposition.from_dict({**requested, "n_pairs": rc.pool.eval_pairs}), seed=P.seed + 1)
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
    composition = {"requested": requested, "realised": pool.composition, "dialects": pool.dialects,
                   "n_pairs": len(pool.pairs), "n_problems": len({p.pid for p in pool.pairs}),
                   "sources": {s: sum(len(v) for v in src.values()) for s, src in sources.items()}}
    tmp = fresh_tmp_dir(out)
    save_model_atomic(model, tok, tmp, {"model": "reward_model", "spec": rc.model.model_dump(),
                                        "train": rc.train.model_dump(), "seed": P.seed, "pool": composition})
    write_json(tmp / "pool.json", {**composition, "pairs": [asdict(p) for p in pool.pairs]})
    replace_dir(tmp, out)
    shutil.rmtree(run.dir, ignore_errors=True)
    return {"pool": composition, "train_accuracy": train_eval["accuracy"], "train_loss": train_eval["loss"],
            "heldout_accuracy": stats["accuracy_after"] if eval_pool else None,
            "heldout_loss": stats["loss_after"] if eval_pool else None,
            "heldout_pairs": len(eval_pool.pairs) if eval_pool else 0,
            **{k: stats[k] for k in ("steps", "final_loss", "wall_s")}}
