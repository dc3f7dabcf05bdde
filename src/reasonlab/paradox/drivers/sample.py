"""Stage ``paradox_sample@<family>``: rejection sampling on the RFT problems (and on reward-role problems,
whose failures feed the reward model).
"""

from __future__ import annotations

from pathlib import Path

from ...generate import pick_backend
from ...io import fresh_tmp_dir, replace_dir, setup_threads
from ...models.zoo import load_lm
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..rejection import failed_samples, rejection_sample, save_rft
from ..roles import role_items


def sample_family(P: ParadoxParams, family: str, model_dir: str | Path, world_dir: str | Path, out: str | Path) -> dict:
    """Stage ``paradox_sample@<family>``: ``out/rft.json`` (RFT problems) and ``out/reward.json``
    (reward-role problems, only when ``sample.reward_problems > 0``)."""
    setup_threads()
    P.paradox.check_family(family)
    pc, sc = P.paradox, P.paradox.sample
    task = open_task(world_dir)
    backend = pick_backend(P.eval.backend)
    model, tok = load_lm(model_dir)
    kw = dict(n=sc.n, temperature=sc.temperature, top_p=sc.top_p, seed=P.seed, max_new_tokens=sc.max_new_tokens,
              batch_size=sc.batch_size, backend=backend, model_path=model_dir)
    tmp = fresh_tmp_dir(out)
    rft = rejection_sample(model, tok, role_items(task, "rft", pc.problems.rft, pc.problems.seed), **kw)
    if len(rft.traces) < pc.problems.min_ids:
        raise RuntimeError(f"{family}: {len(rft.traces)} problems solved in {rft.stats['n_samples']} samples "
                           f"(paradox.problems.min_ids={pc.problems.min_ids}); raise paradox.problems.rft or "
                           "paradox.sample.n, or train the model longer")
    save_rft(rft, tmp / "rft.json")
    metrics = {"family": family, "rft": rft.stats}
    if sc.reward_problems:
        rw = rejection_sample(model, tok, role_items(task, "reward", sc.reward_problems, pc.problems.seed), **kw)
        save_rft(rw, tmp / "reward.json")
        metrics["reward"] = {**rw.stats, "failed_problems": len(failed_samples(rw))}
    replace_dir(tmp, out)
    return metrics
