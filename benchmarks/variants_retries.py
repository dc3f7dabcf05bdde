"""What sampled retries buy and cost in the variants stage, on a family's own drafts (a study, not a stage).

``paradox_variants@<family>`` asks the oracle's three modes for every problem the family solved (its SLM-RFT
traces are the drafts), retries each failure ``paradox.oracle_run.max_retries`` times (default 2), and keeps the
problems where all three verify. ``oracle_modes_eval.py`` measured that 128 retries lift refine and style past 80%
on the world's held-out drafts; this script measures it where the stage uses it: the family's own drafts, every
length, and what it does to the five sets (how many ids survive, their problem lengths, the faithfulness table).

One run at the largest ``--retries`` gives every smaller budget too: attempt ``k`` of a problem samples with seed
``seed + k`` and the problems still pending at attempt ``k`` do not depend on the budget, so a run with budget
``R`` is the first ``R + 1`` attempts of a run with a larger one. The script runs the modes once (the stage's
proposer, prompts and sampling), records per mode and problem the attempt that first verified, and evaluates every
budget of ``--report`` from that: pass rate per mode (overall and by problem length), the ids kept in all five sets
(count and lengths), the faithfulness table the stage writes (``refined_differs_share`` among it), and the
generation time the budget costs (the attempts' own wall times, summed); refine and style also split by whether the
draft was fully valid; and per problem the attempt at which each mode first verified. A budget of 2 can be checked
against the stage's own metrics (``metrics/paradox/variants/<family>.json``).

    python benchmarks/variants_retries.py llama --oracle models/oracle_modes --samples data/paradox/samples/llama \\
        --retries 128 --report 0 2 8 32 128 --out benchmarks/variants_retries/llama.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from reasonlab.io import setup_threads
from reasonlab.models.zoo import load_lm
from reasonlab.paradox.config import MODES, ParadoxParams
from reasonlab.paradox.faithfulness import faithfulness
from reasonlab.paradox.oracle import OracleResult, model_proposer, oracle_run
from reasonlab.paradox.rejection import load_rft
from reasonlab.paradox.roles import role_items
from reasonlab.paradox.variants import build_variants
from reasonlab.params import parse_params
from reasonlab.profiles import compose
from reasonlab.world.tasks import open_task

ROOT = Path(__file__).resolve().parents[1]


def timed(proposer, log: list):
    """``proposer`` that appends ``(mode, attempt, prompts, seconds)`` of every call to ``log``."""
    def propose(mode, items, drafts, attempt):
        t0 = time.perf_counter()
        out = proposer(mode, items, drafts, attempt)
        log.append((mode, attempt, len(items), time.perf_counter() - t0))
        return out
    return propose


def truncate(res: OracleResult, budget: int) -> OracleResult:
    """``res`` as a run with ``max_retries=budget`` would have returned it (outputs found within ``budget + 1``
    attempts; the rest failed)."""
    outputs = {p: t for p, t in res.outputs.items() if res.attempts[p] <= budget + 1}
    failed = {p: res.failed.get(p, "retried_past_budget") for p in res.attempts if p not in outputs}
    n = len(res.attempts)
    return OracleResult(res.mode, outputs, failed, {p: min(a, budget + 1) for p, a in res.attempts.items()},
                        {"pass_rate": len(outputs) / n if n else 0.0})


def budget_summary(results: dict[str, OracleResult], budget: int, rft, items, log) -> dict:
    """Everything the stage would report at ``max_retries=budget``, from the attempts of a larger run."""
    cut = {m: truncate(r, budget) for m, r in results.items()}
    vs = build_variants(rft, items, lambda mode, probs, drafts: cut[mode])
    by_pid = {it.pid: it.problem for it in items}
    lengths = {pid: by_pid[pid].steps for pid in rft.traces}
    solvable_len = Counter(lengths.values())
    pass_by_len = {m: {str(k): round(sum(lengths[p] == k for p in c.outputs) / solvable_len[k], 4)
                       for k in sorted(solvable_len)} for m, c in cut.items()}
    gen_s = sum(s for _, a, _, s in log if a <= budget)
    prompts = sum(n for _, a, n, _ in log if a <= budget)
    kept_len = Counter(lengths[p] for p in vs.pids)
    valid = {p for p, t in rft.traces.items() if t.all_valid}
    by_draft = {m: {kind: round(sum(p in c.outputs for p in ps) / len(ps), 4) if ps else None
                    for kind, ps in (("valid", valid), ("flawed", set(rft.traces) - valid))}
                for m, c in cut.items() if m != "synth"}
    return {
        "max_retries": budget,
        "pass_rate": {m: round(c.stats["pass_rate"], 4) for m, c in cut.items()},
        "pass_rate_by_steps": pass_by_len,
        "pass_rate_by_draft": by_draft,
        "n_ids": len(vs.pids),
        "ids_by_steps": {str(k): kept_len[k] for k in sorted(kept_len)},
        "faithfulness": faithfulness(by_pid, vs.outputs, {pid: t.text for pid, t in rft.traces.items()}),
        "generations": prompts,
        "generation_s": round(gen_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family")
    ap.add_argument("--oracle", required=True, help="the trained modes model (models/oracle_modes or a study's copy)")
    ap.add_argument("--samples", required=True, help="the family's paradox_sample output (its rft.json)")
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--set", action="append", default=[], help="a params override, e.g. seed=1")
    ap.add_argument("--retries", type=int, default=128, help="the largest retry budget run")
    ap.add_argument("--report", type=int, nargs="+", default=[0, 2, 8, 32, 128], help="budgets evaluated (<= --retries)")
    ap.add_argument("--max-problems", type=int, default=None, help="only the first N solvable problems (a quick check)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if any(b < 0 or b > a.retries for b in a.report):
        raise SystemExit(f"--report: every budget must be in [0, --retries={a.retries}], got {a.report}")
    setup_threads()
    P = parse_params(compose(a.profile, ROOT / "conf", a.set), "variants_retries", ParadoxParams)
    P.paradox.check_family(a.family)
    pc, orc = P.paradox, P.paradox.oracle_run
    task = open_task(a.world)
    rft = load_rft(Path(a.samples) / "rft.json")
    if a.max_problems is not None:
        rft.traces = dict(list(rft.traces.items())[:a.max_problems])
    items = role_items(task, "rft", pc.problems.rft, pc.problems.seed)
    by_pid = {it.pid: it for it in items}
    probs = [by_pid[pid] for pid in rft.traces]
    drafts = [rft.traces[pid].text for pid in rft.traces]
    model, tok = load_lm(a.oracle)
    log: list = []
    # the stage's proposer (drivers/variants.py), timed
    proposer = timed(model_proposer(model, tok, seed=P.seed, temperature=orc.temperature,
                                    retry_temperature=orc.retry_temperature, top_p=orc.top_p,
                                    max_new_tokens=orc.max_new_tokens, batch_size=orc.batch_size,
                                    templates=pc.templates.modes(), system=pc.templates.system), log)
    t0 = time.perf_counter()
    results = {m: oracle_run(proposer, m, probs, None if m == "synth" else drafts, max_retries=a.retries)
               for m in MODES}
    wall = time.perf_counter() - t0
    rec = {"family": a.family, "oracle": a.oracle, "overrides": a.set, "n_solvable": len(probs),
           "retries_run": a.retries, "wall_s": round(wall, 1),
           "budgets": [budget_summary(results, b, rft, items, log) for b in sorted(a.report)],
           # per problem: its length, whether the draft was fully valid, and per mode the attempt that first
           # verified (null: none within the run's budget), so any budget's numbers can be recomputed
           "problems": [{"pid": p.pid, "steps": p.problem.steps, "draft_valid": rft.traces[p.pid].all_valid,
                         **{m: (r.attempts[p.pid] if p.pid in r.outputs else None) for m, r in results.items()}}
                        for p in probs],
           "attempt_log": [{"mode": m, "attempt": k, "prompts": n, "s": round(t, 2)} for m, k, n, t in log]}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec) + "\n")
    for b in rec["budgets"]:
        print(json.dumps({k: b[k] for k in ("max_retries", "pass_rate", "n_ids", "ids_by_steps", "generation_s")}))


if __name__ == "__main__":
    main()
