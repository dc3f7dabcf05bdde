"""Stage ``paradox_variants@<family>``: the five training sets on identical problem ids.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from ...io import fresh_tmp_dir, replace_dir, setup_threads
from ...models.zoo import load_lm, model_source
from ...world.tasks import open_task
from ..config import ParadoxParams
from ..faithfulness import faithfulness
from ..oracle import expert_oracle, model_proposer, oracle_run
from ..rejection import load_rft
from ..roles import role_items
from ..variants import VariantSets, build_variants, save_variants


def make_variants(P: ParadoxParams, family: str, oracle_dir: str | Path, world_dir: str | Path, sample_dir: str | Path,
                  out: str | Path) -> dict:
    """Stage ``paradox_variants@<family>``: the five sets (``out/<set>/``, ``datasets``) and ``out/report.json``."""
    setup_threads()
    P.paradox.check_family(family)
    pc, orc = P.paradox, P.paradox.oracle_run
    task = open_task(world_dir)
    rft = load_rft(Path(sample_dir) / "rft.json")
    items = role_items(task, "rft", pc.problems.rft, pc.problems.seed)
    if orc.proposer == "expert":  # the world's solver: a stand-in for a frontier oracle (and the smoke profile's)
        task.require_graphs("paradox.oracle_run.proposer=expert (the world's own solver)")
        proposer = expert_oracle
    else:  # the trained oracle (tiny prompts) or, in the paper profile, the released chat oracle
        model, tok = load_lm(model_source(oracle_dir))
        proposer = model_proposer(model, tok, seed=P.seed, temperature=orc.temperature,
                                  retry_temperature=orc.retry_temperature, top_p=orc.top_p,
                                  max_new_tokens=orc.max_new_tokens, batch_size=orc.batch_size,
                                  templates=pc.templates.modes(), system=pc.templates.system)
    t0 = time.perf_counter()
    vs = build_variants(rft, items, partial(oracle_run, proposer, max_retries=orc.max_retries))
    r = vs.report
    faithful = None
    if all(it.problem is not None for it in items):  # tiny world: the steps and dialects can be parsed
        by_pid = {it.pid: it.problem for it in items}
        faithful = faithfulness(by_pid, vs.outputs, {pid: t.text for pid, t in rft.traces.items()})
    not_testable = None
    if len(vs.pids) < pc.problems.min_ids:
        # the paradox is not testable for this family: its sets go on empty (no student is trained on a
        # handful of problems) and the report says why, with these numbers
        not_testable = (f"{len(vs.pids)} of {r['n_solvable']} solvable problems survive into all five sets "
                        f"(every oracle mode must verify; paradox.problems.min_ids={pc.problems.min_ids}); "
                        f"dropped by mode: {r['dropped_by_mode']}")
        print(f"[variants {family}] not testable here: {not_testable}")
        vs = VariantSets({v: ds.select([]) for v, ds in vs.sets.items()}, [], {**r, "not_testable": not_testable})
    tmp = fresh_tmp_dir(out)
    save_variants(vs, tmp)
    replace_dir(tmp, out)
    return {"family": family, "proposer": orc.proposer, "n_solvable": r["n_solvable"], "n_ids": len(vs.pids),
            "n_surviving": r["n_kept"], "not_testable": not_testable, "n_dropped": r["n_dropped"],
            "kept_fraction": r["n_kept"] / r["n_solvable"] if r["n_solvable"] else 0.0,
            "dropped_by_mode": r["dropped_by_mode"],
            "oracle": {m: {k: s[k] for k in ("pass_rate", "first_try_pass_rate", "attempts")} for m, s in r["oracle"].items()},
            "faithfulness": faithful,
            "wall_s": time.perf_counter() - t0}
