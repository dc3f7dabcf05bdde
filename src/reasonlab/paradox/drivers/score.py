"""Stage ``paradox_score@<family>``: RM score, checker quality, perplexity and token shift of every set.
"""

from __future__ import annotations

import time
from pathlib import Path

from ...io import fresh_tmp_dir, replace_dir, setup_threads, write_json
from ...models.zoo import load_lm
from ...world.tasks import open_task
from ..analysis import analyze_variants, set_quality
from ..config import ParadoxParams
from ..rejection import load_rft, own_samples
from ..reward import load_reward_model, score, score_summary
from ..roles import role_items
from ..variants import load_variants


def score_family(P: ParadoxParams, family: str, model_dir: str | Path, rm_dir: str | Path, world_dir: str | Path,
                 sample_dir: str | Path, variants_dir: str | Path, out: str | Path) -> dict:
    """Stage ``paradox_score@<family>``: per set the RM score (mean, 95% CI; and its paired difference from
    SLM-RFT's on the same ids, ``rm_minus_slm_rft``), checker quality (with the flaws
    behind right answers, by kind), perplexity (global, Q1-Q4), token shift and semantic preservation; the same
    flaw profile over every chosen RFT trace of the family (``rft_traces``). Writes ``out/analysis.json`` (the full
    analysis) and ``out/scores.csv`` (one RM score per trace)."""
    import pandas as pd

    setup_threads()
    P.paradox.check_family(family)
    pc, ac = P.paradox, P.paradox.analysis
    sets = load_variants(variants_dir)
    by_pid = {it.pid: it for it in role_items(open_task(world_dir), "rft", pc.problems.rft, pc.problems.seed)}
    rft = load_rft(Path(sample_dir) / "rft.json")
    # every chosen RFT trace (one per solvable problem, not only the ids that survive into all five sets)
    rft_quality = (set_quality([by_pid[pid] for pid in rft.traces], [t.text for t in rft.traces.values()])
                   if rft.traces else None)
    n_ids = len(next(iter(sets.values())))
    t0 = time.perf_counter()
    rows, rm_summ, ana, raw, rm_diff = [], {}, {}, {}, {}
    if n_ids:  # nothing survived (allowed by paradox.problems.min_ids=0): score nothing
        rm, rm_tok = load_reward_model(rm_dir)
        base, tok = load_lm(model_dir)
        for name, ds in sets.items():
            s = score(rm, rm_tok, [by_pid[pid] for pid in ds["pid"]], list(ds["solution"]),
                      batch_size=pc.reward.score_batch_size, max_len=pc.reward.train.max_len)
            rm_summ[name] = score_summary(s, n_boot=ac.n_boot, seed=P.seed)
            raw[name] = s
            rows += [{"set": name, "pid": pid, "rm_score": float(v)} for pid, v in zip(ds["pid"], s)]
        if "slm_rft" in raw:  # the sets share their ids in order (load_variants checks it): paired differences
            for name, s in raw.items():
                if name != "slm_rft":
                    d = score_summary(s - raw["slm_rft"], n_boot=ac.n_boot, seed=P.seed)
                    rm_diff[name] = {"mean": d["mean"], "ci95": list(d["ci95"])}
        ana = analyze_variants(base, tok, sets, list(by_pid.values()), own_samples(rft),
                               batch_size=ac.batch_size, max_len=pc.finetune.train.max_len, top=ac.top_tokens)
    tmp = fresh_tmp_dir(out)
    write_json(tmp / "analysis.json", {"rm": rm_summ, "sets": ana})
    pd.DataFrame(rows, columns=["set", "pid", "rm_score"]).to_csv(tmp / "scores.csv", index=False)
    replace_dir(tmp, out)
    sets_m = {}
    for name in ana:
        a, r = ana[name], rm_summ[name]
        ppl = a["perplexity"]
        sets_m[name] = {
            "rm_score": r["mean"], "rm_ci95": list(r["ci95"]), "rm_sd": r["sd"],
            "rm_minus_slm_rft": rm_diff.get(name),
            "step_validity": a["quality"]["step_validity"], "all_valid": a["quality"]["all_valid"],
            "ppl": ppl["ppl"], **{f"ppl_{q.lower()}": ppl["quarters"][q]["ppl"] for q in ppl["quarters"]},
            "tv_distance": a["token_shift"]["tv_distance"], "symbolic_share": a["token_shift"]["symbolic_share"],
            "mean_tokens": a["token_shift"]["mean_tokens"],
            "preservation": a.get("preservation", {}).get("mean"),
            "flawed_share": a["quality"]["flaws"]["flawed_share"],
            "flaws_by_kind": a["quality"]["flaws"]["by_kind"],
        }
    rft_m = None
    if rft_quality is not None:
        rft_m = {"n": len(rft.traces), "all_valid": rft_quality["all_valid"], "step_validity": rft_quality["step_validity"],
                 **rft_quality["flaws"]}
    return {"family": family, "n_ids": n_ids, "sets": sets_m, "rft_traces": rft_m, "wall_s": time.perf_counter() - t0}
