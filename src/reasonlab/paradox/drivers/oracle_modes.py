"""Stage ``paradox_oracle_modes``: the base oracle fine-tuned on its three prompted modes from world-generated
drafts, with each mode's verified pass rate on held-out drafts (paper profile: the released chat oracle is
prompted as it is).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ...checkpoint import CKPT_ROOT, Run, digest
from ...evaluate import wilson_ci
from ...io import setup_threads
from ...models.train import no_curves, train
from ...models.zoo import load_lm, save_model_atomic, write_hub_pointer
from ...world.tasks import Item, open_task
from ..config import MODES, ParadoxParams
from ..drafts import sample_draft, tokenizer_max_number
from ..oracle import Proposer, mode_training_examples, model_proposer, oracle_run
from ..roles import role_items


def held_out_eval(proposer: Proposer, mode: str, items: list[Item], drafts: list | None,
                  max_retries: int) -> dict:
    """A mode's verified pass rate on held-out problems: first try (``pass_rate``, the proposer's first-try
    temperature) with its Wilson interval, the pass rate after ``max_retries`` retries as the oracle run makes
    them (``retried_pass_rate``), and the first-try pass rate by the draft's mistake kind (``by_kind``) and by the
    problem's derived steps (``by_steps``). ``drafts``: :class:`~reasonlab.paradox.drafts.Draft` objects (``None``
    in synth mode)."""
    texts = None if drafts is None else [d.text for d in drafts]
    r = oracle_run(proposer, mode, items, texts, max_retries=max_retries)
    n = len(items)
    passed_first = {p for p, a in r.attempts.items() if a == 1 and p in r.outputs}
    first = len(passed_first)
    by_kind: dict[str, list[bool]] = {}
    by_steps: dict[int, list[bool]] = {}
    for i, it in enumerate(items):
        by_steps.setdefault(it.problem.steps, []).append(it.pid in passed_first)
        if drafts is not None:
            by_kind.setdefault(drafts[i].kind, []).append(it.pid in passed_first)
    return {"n": n, "pass_rate": first / n, "pass_ci": list(wilson_ci(first, n)),
            "retried_pass_rate": r.stats["pass_rate"], "retried_ci": list(wilson_ci(r.stats["kept"], n)),
            "max_retries": max_retries, "failed_by_reason": r.stats["failed_by_reason"],
            "by_kind": _rates(by_kind), "by_steps": _rates(by_steps)}


def _rates(groups: dict) -> dict:
    return {str(k): {"n": len(v), "pass_rate": sum(v) / len(v)} for k, v in sorted(groups.items())}


def held_out_drafts(P: ParadoxParams, items: list[Item], tok) -> list:
    """One fresh draft per held-out problem (seeded by ``P.seed`` and the item's position; none was trained on)."""
    om = P.paradox.oracle_modes
    return [sample_draft(it.problem, np.random.default_rng([P.seed, 97, i]), dict(om.kind_weights),
                         max_value=tokenizer_max_number(tok), const_range=tuple(P.world.const_range))
            for i, it in enumerate(items)]


def held_out_modes(P: ParadoxParams, model, tok, items: list[Item], max_retries: int | None = None) -> dict:
    """:func:`held_out_eval` of every mode on ``items`` with :func:`held_out_drafts`, prompted as the oracle run
    prompts (``paradox.oracle_run``: greedy first try, sampled retries; ``max_retries`` defaults to the run's)."""
    rc = P.paradox.oracle_run
    drafts = held_out_drafts(P, items, tok)
    proposer = model_proposer(model, tok, seed=P.seed, temperature=rc.temperature,
                              retry_temperature=rc.retry_temperature, top_p=rc.top_p,
                              max_new_tokens=rc.max_new_tokens, batch_size=rc.batch_size)
    retries = rc.max_retries if max_retries is None else max_retries
    return {mode: held_out_eval(proposer, mode, items, None if mode == "synth" else drafts, retries)
            for mode in MODES}


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
                                       "problems": {"seed": pc.problems.seed, "oracle_modes": n_train},
                                       "world": P.world.model_dump()}, ckpt_root)  # not the other roles' sizes
    stats = run.train(model, lambda ck: train(model, exs, cfg, pad_id=tok.pad_token_id, seed=P.seed, ckpt_dir=ck,
                                              live_dir=live_dir, desc="oracle modes"), "oracle modes")
    modes_eval = held_out_modes(P, model, tok, eval_items) if eval_items else {}
    save_model_atomic(model, tok, out, {"model": "oracle_modes", "base": pc.oracle, "oracle_modes": om.model_dump(),
                                        "seed": P.seed, "n_examples": len(exs)})
    shutil.rmtree(run.dir, ignore_errors=True)  # finished: the saved model supersedes the run's weights
    return {"oracle": pc.oracle, "n_problems": len(train_p), "n_examples": len(exs), **stats,
            "held_out": {"n": len(eval_items), **modes_eval}}
