"""The adaptation-cost analysis (issue 25): the drift dial's sets, loss attribution, the rank trend and its verdict."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from reasonlab.models.zoo import build_model, load_tokenizer  # noqa: E402
from reasonlab.paradox.adaptation import (drift_sets, level_name, logic_check, loss_attribution, order_name,  # noqa: E402
                                          quarter_ranking, sweep_verdict, token_class)
from reasonlab.paradox.analysis import perplexity_from_nll, solution_token_nll_ids  # noqa: E402
from reasonlab.paradox.config import AdaptationConfig  # noqa: E402
from reasonlab.stats import paired_diff, rank_trend, ranks, spearman  # noqa: E402
from reasonlab.world.dialects import DIALECT_HABIT, render_solution  # noqa: E402
from reasonlab.world.tasks import open_task  # noqa: E402


@pytest.fixture(scope="module")
def items(smoke_world):
    return [it for it in open_task(smoke_world).tier_items("medium", 40) if it.problem.steps >= 3][:24]


@pytest.fixture(scope="module")
def tok(smoke_world):
    return load_tokenizer(smoke_world / "tokenizer")


def test_token_classes():
    assert [token_class(t) for t in ("has", "17", "=", "####", ";", "<eos>", "<")] == \
        ["word", "number", "notation", "notation", "notation", "special", "notation"]


def test_drift_sets_share_problems_and_logic_and_differ_only_in_rendering(items):
    levels = [0.0, 0.5, 1.0]
    sets = drift_sets(items, "qwen", levels, seed=0, other="oracle", order_axis=True)
    assert list(sets) == [level_name(s) for s in levels] + [order_name(DIALECT_HABIT["oracle"])]
    pids = [it.pid for it in items]
    for ds in sets.values():
        assert list(ds["pid"]) == pids and list(ds["prompt"]) == [it.prompt for it in items]
    # level 0 is the family's own correct solution; every level states the same atoms, validly
    assert list(sets["drift_0.00"]["solution"]) == [render_solution(it.problem, "qwen") for it in items]
    check = logic_check(items, sets)
    assert all(v["all_valid"] == 1.0 and v["same_atoms"] == 1.0 for v in check.values()), check
    # the rendering does change: every trace at level 1, and the order axis where the habits' orders differ
    assert all(a != b for a, b in zip(sets["drift_0.00"]["solution"], sets["drift_1.00"]["solution"]))
    order = sets[order_name(DIALECT_HABIT["oracle"])]["solution"]
    assert any(a != b for a, b in zip(sets["drift_0.00"]["solution"], order))
    # a broken set is caught: a trace with a step dropped no longer states the same atoms
    broken = {"x": sets["drift_0.00"].map(lambda r: {"solution": " . ".join(r["solution"].split(" . ")[1:])})}
    assert logic_check(items, broken)["x"]["same_atoms"] < 1.0


def test_drift_sets_reject_bad_levels(items):
    with pytest.raises(ValueError, match="levels"):
        drift_sets(items, "qwen", [0.0, 1.5], seed=0)
    with pytest.raises(ValueError, match="levels"):
        AdaptationConfig(levels=[0.0, 0.5])  # fewer than 3: no rank correlation
    with pytest.raises(ValueError, match="increasing"):
        AdaptationConfig(levels=[1.0, 0.5, 0.0])


def test_token_nll_ids_match_a_direct_computation(smoke_params, tok, items):
    model = build_model(smoke_params.model("llama"), tok, 0).eval()
    prompts = [it.prompt for it in items[:3]]
    sols = [render_solution(it.problem, "llama") for it in items[:3]]
    got = solution_token_nll_ids(model, tok, prompts, sols, batch_size=2)
    for (ids, nll), p, s in zip(got, prompts, sols):
        sol = tok(s, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        full = tok(p, add_special_tokens=False)["input_ids"] + sol
        n_sol = len(sol)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full])).logits[0, :-1]
        direct = F.cross_entropy(logits, torch.tensor(full[1:]), reduction="none")[-n_sol:].numpy()
        assert list(ids) == full[-n_sol:]
        np.testing.assert_allclose(nll, direct, rtol=1e-4, atol=1e-5)
    # per quarter: Q1 holds the first quarter of each trace's tokens
    r = perplexity_from_nll([nll for _, nll in got])
    q1 = np.concatenate([nll[: len(nll) // 4 + (len(nll) % 4 > 0)] for _, nll in got])
    assert r["quarters"]["Q1"]["nll"] == pytest.approx(float(q1.mean()), rel=1e-9)


def test_loss_attribution_on_fixed_inputs():
    vocab = {0: "ann", 1: "has", 2: "7", 3: "=", 4: "<eos>"}
    traces = [([0, 1, 2, 3, 2, 4, 0, 1], np.array([2.0, 2.0, 1.0, 3.0, 0.5, 0.1, 1.0, 1.0]))]
    q1 = loss_attribution(traces, vocab, "Q1")  # positions 0, 1: "ann", "has"
    assert q1["n_tokens"] == 2 and q1["by_class"]["word"]["loss_share"] == 1.0
    assert q1["by_class"]["notation"]["token_share"] == 0.0 and math.isnan(q1["by_class"]["notation"]["mean_nll"])
    whole = loss_attribution(traces, vocab, None, top=2)
    total = 10.6
    assert whole["by_class"]["word"]["loss_share"] == pytest.approx(6.0 / total)
    assert whole["by_class"]["notation"]["loss_share"] == pytest.approx(3.0 / total)
    assert whole["by_class"]["number"]["mean_nll"] == pytest.approx(0.75)
    assert [t["token"] for t in whole["top"]] == ["=", "ann"]  # "ann" 3.0 ties "has" 3.0: by name
    with pytest.raises(ValueError, match="quarter"):
        loss_attribution(traces, vocab, "Q5")
    with pytest.raises(ValueError, match="token ids"):
        loss_attribution([([0, 1], np.array([1.0]))], vocab)


def test_quarter_ranking():
    def ppl(g, qs):
        return {"ppl": g, "quarters": {f"Q{i + 1}": {"ppl": v} for i, v in enumerate(qs)}}
    same = quarter_ranking({"a": ppl(1.5, [1.4, 1.5, 1.5, 1.6]), "b": ppl(2.0, [2.1, 1.9, 2.0, 2.0])})
    assert same["global"] == ["a", "b"] and same["same_in_every_quarter"]
    flip = quarter_ranking({"a": ppl(1.5, [2.5, 1.2, 1.2, 1.2]), "b": ppl(2.0, [2.1, 1.9, 2.0, 2.0])})
    assert not flip["same_in_every_quarter"] and flip["pair_agreement"]["Q1"] == 0.0


def test_spearman_and_ranks():
    assert list(ranks([3, 1, 1, 2])) == [4.0, 1.5, 1.5, 3.0]
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))


def test_rank_trend_known_monotone_and_flat():
    rng = np.random.default_rng(0)
    x = [1.0, 1.2, 1.4, 1.6, 1.8]
    # utility falls by 10 points per level on 200 problems and 3 seeds: the interval sits at -1
    falling = [(rng.random((3, 200)) < 0.6 - 0.1 * i).astype(float) for i in range(5)]
    t = rank_trend(x, falling, n_boot=300)
    assert t["rho"] == pytest.approx(-1.0) and t["ci95"][1] < -0.5
    # no effect: every level draws from the same distribution; the interval spans 0
    flat = [(rng.random((3, 200)) < 0.3).astype(float) for _ in range(5)]
    f = rank_trend(x, flat, n_boot=300)
    assert f["ci95"][0] < 0 < f["ci95"][1]
    with pytest.raises(ValueError, match="same"):
        rank_trend(x, [np.zeros((3, 10))] * 4 + [np.zeros((2, 10))])


def test_sweep_verdict():
    rng = np.random.default_rng(1)
    x = [1.0, 1.2, 1.4]
    falling = [(rng.random((3, 300)) < 0.5 - 0.15 * i).astype(float) for i in range(3)]
    rising = falling[::-1]
    moved = paired_diff(np.full(50, 0.4) + rng.normal(0, 0.05, 50), np.full(50, 0.2) + rng.normal(0, 0.05, 50))
    still = paired_diff(rng.normal(0, 0.05, 50), rng.normal(0, 0.05, 50))
    assert sweep_verdict(x, falling, moved, n_boot=300)["verdict"] == "holds"
    no = sweep_verdict(x, rising, moved, n_boot=300)
    assert no["verdict"] == "does not hold" and no["last_minus_first"]["mean"] > 0
    assert sweep_verdict(x, falling, still, n_boot=300)["verdict"] == "not testable here"
