"""The retry study (benchmarks/variants_retries.py): a budget read off a larger run equals a run with that budget."""

import numpy as np

from benchmod import load
from reasonlab.generate import Sample
from reasonlab.paradox.config import MODES
from reasonlab.paradox.oracle import oracle_run, expert_oracle
from reasonlab.paradox.rejection import select_traces
from reasonlab.paradox.variants import build_variants
from reasonlab.world.build import load_problems
from reasonlab.world.dialects import SMALL_DIALECTS, render_solution
from reasonlab.world.tasks import tiny_item


def _setup(smoke_world):
    ps = load_problems(smoke_world, "train")[:16]
    items = [tiny_item(p) for p in ps]
    samples = [[Sample(render_solution(p, SMALL_DIALECTS[i % 3]), 5, True)] for i, p in enumerate(ps)]
    rft = select_traces(items, samples, seed=0)
    # a problem's mode verifies from attempt `first[mode, pid]` on (0..5, 6 = never): fixed, whatever the budget
    rng = np.random.default_rng(0)
    first = {(m, it.pid): int(rng.integers(0, 7)) for m in MODES for it in items}

    def proposer(mode, its, drafts, attempt):
        outs = expert_oracle(mode, its, drafts, attempt)
        return [o if attempt >= first[mode, it.pid] else "nonsense ." for o, it in zip(outs, its)]

    return items, rft, proposer, first


def test_a_budget_read_off_a_larger_run_equals_a_run_with_that_budget(smoke_world):
    vr = load("variants_retries")
    items, rft, proposer, first = _setup(smoke_world)
    log = []
    timed = vr.timed(proposer, log)
    drafts = [rft.traces[p].text for p in rft.traces]
    probs = [next(it for it in items if it.pid == p) for p in rft.traces]
    big = {m: oracle_run(timed, m, probs, None if m == "synth" else drafts, max_retries=5) for m in MODES}
    assert {(m, a) for m, a, _, _ in log} == {(m, a) for m in MODES for a in range(6)}
    for budget in (0, 2, 5):
        alone = {m: oracle_run(proposer, m, probs, None if m == "synth" else drafts, max_retries=budget) for m in MODES}
        for m in MODES:
            cut = vr.truncate(big[m], budget)
            assert cut.outputs == alone[m].outputs, (m, budget)
            assert cut.stats["pass_rate"] == alone[m].stats["pass_rate"]
            assert set(cut.outputs) == {p.pid for p in probs if first[m, p.pid] <= budget}
        s = vr.budget_summary(big, budget, rft, items, log)
        want = build_variants(rft, items, lambda mode, _p, _d: alone[mode])
        assert s["n_ids"] == len(want.pids) == sum(s["ids_by_steps"].values())
        assert s["generations"] == sum(n for _, a, n, _ in log if a <= budget)
        assert s["pass_rate"] == {m: round(alone[m].stats["pass_rate"], 4) for m in MODES}
    # a larger budget never keeps fewer ids
    n = [vr.budget_summary(big, b, rft, items, log)["n_ids"] for b in range(6)]
    assert n == sorted(n) and n[0] < n[-1]
