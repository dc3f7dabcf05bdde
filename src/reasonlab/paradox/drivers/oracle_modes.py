"""Stage ``paradox_oracle_modes``: the base oracle fine-tuned on its three prompted modes from world-generated
drafts, with each mode's verified pass rate on held-out drafts (paper profile: the released chat oracle is
prompted as it is).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ...checkpoint import CKPT_ROOT, Run, digest
from ...io import setup_threads
from ...models.train import no_curves, train
from ...models.zoo import load_lm, save_model_atomic, write_hub_pointer
from ...world.tasks import open_task
from ..config import MODES, ParadoxParams
from ..drafts import sample_draft, tokenizer_max_number
from ..oracle import mode_training_examples, model_proposer, oracle_run
from ..roles import role_items


def train_oracle_modes(P: ParadoxParams, oracle_dir: str | Path, world_dir: str | Path, out: str | Path,
                       live_dir: str | Path | None = None, ckpt_root: str | Path = CKPT_ROOT) -> dict:
    """Stage ``paradox_oracle_modes``: fine-tune the base oracle on its three prompted modes."""
    setup_threads()
    pc = P.paradox
    om = pc.oracle_modes
    spec = P.model(pc.oracle)
    if spec.hub_id:  # paper profile: a prompted chat oracle has its modes already (paradox.templates)
        no_curves(live_dir)
        return {"oracle": pc.oracle, **write_hub_pointer(out, spec.hub_id, prompting="chat")}
    task = open_task(world_dir)
    task.require_graphs("paradox_oracle_modes (training the oracle's modes on world-generated drafts)")
    model, tok = load_lm(oracle_dir)
    n_train = pc.problems.oracle_modes
    items = role_items(task, "oracle_modes", n_train + om.eval_problems, pc.problems.seed)
    train_p, eval_items = [it.problem for it in items[:n_train]], items[n_train:]
    const_range = tuple(P.world.const_range)
    exs = mode_training_examples(train_p, tok, seed=P.seed, drafts_per_problem=om.drafts_per_problem,
                                 kind_weights=dict(om.kind_weights), const_range=const_range)
    cfg = om.train.resolve(len(exs))
    run = Run("paradox-oracle-modes", {"oracle": digest(oracle_dir), "train": om.model_dump(), "seed": P.seed,
                                       "problems": pc.problems.model_dump(), "world": P.world.model_dump()}, ckpt_root)
    stats = run.train(model, lambda ck: train(model, exs, cfg, pad_id=tok.pad_token_id, seed=P.seed, ckpt_dir=ck,
                                              live_dir=live_dir, desc="oracle modes"), "oracle modes")
    modes_eval = {}  # each mode on held-out problems with fresh drafts: one greedy try, verified
    if eval_items:
        drafts = [sample_draft(it.problem, np.random.default_rng([P.seed, 97, i]), dict(om.kind_weights),
                               max_value=tokenizer_max_number(tok), const_range=const_range).text
                  for i, it in enumerate(eval_items)]
        proposer = model_proposer(model, tok, seed=P.seed, max_new_tokens=pc.oracle_run.max_new_tokens,
                                  batch_size=pc.oracle_run.batch_size)
        for mode in MODES:
            r = oracle_run(proposer, mode, eval_items, None if mode == "synth" else drafts, max_retries=0)
            modes_eval[mode] = {"pass_rate": r.stats["pass_rate"], "failed_by_reason": r.stats["failed_by_reason"]}
    save_model_atomic(model, tok, out, {"model": "oracle_modes", "base": pc.oracle, "oracle_modes": om.model_dump(),
                                        "seed": P.seed, "n_examples": len(exs)})
    shutil.rmtree(run.dir, ignore_errors=True)  # finished: the saved model supersedes the run's weights
    return {"oracle": pc.oracle, "n_problems": len(train_p), "n_examples": len(exs), **stats,
            "held_out": {"n": len(eval_items), **modes_eval}}
