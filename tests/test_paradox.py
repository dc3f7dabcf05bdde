import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import copy  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from reasonlab.generate import Sample  # noqa: E402
from reasonlab.models.data import encode  # noqa: E402
from reasonlab.models.zoo import build_model, build_scorer  # noqa: E402
from reasonlab.paradox.analysis import (  # noqa: E402
    FLAW_KINDS,
    analyze_variants,
    flaw_profile,
    perplexity,
    perplexity_from_nll,
    quarter_index,
    semantic_preservation,
    token_shift,
)
from reasonlab.paradox.config import DRAFT_KINDS, SETS, TemplatesConfig  # noqa: E402
from reasonlab.paradox.drafts import make_draft as _make_draft  # noqa: E402
from reasonlab.paradox.oracle import (  # noqa: E402
    chat_messages,
    chat_prompt,
    mode_training_examples,
    mode_training_records,
    oracle_prompt,
    model_proposer,
    oracle_run,
    oracle_target,
    expert_oracle,
    text_dialect,
    uniform_dialect,
    valid_content,
)
from reasonlab.paradox.rejection import rejection_sample, select_traces  # noqa: E402
from reasonlab.paradox.reward import (  # noqa: E402
    PoolComposition,
    build_rm_pool,
    dialect_only_accuracy,
    dialect_scorer,
    grouped_accuracy,
    pool_candidates,
    score,
    score_summary,
    train_reward_model,
)
from reasonlab.paradox.variants import COLUMNS, assert_same_ids, build_variants, variant_examples  # noqa: E402
from reasonlab.rejection import fragment_reason  # noqa: E402
from reasonlab.world.dialects import DIALECTS, SMALL_DIALECTS, render_solution, render_steps  # noqa: E402
from reasonlab.world.tasks import tiny_item  # noqa: E402
from reasonlab.world.tokenizer import prompt_text  # noqa: E402
from reasonlab.world.build import load_problems  # noqa: E402
from reasonlab.models.zoo import load_tokenizer  # noqa: E402
from reasonlab.world.verifier import verify  # noqa: E402


@pytest.fixture(scope="module")
def tok(smoke_world):
    return load_tokenizer(smoke_world / "tokenizer")


@pytest.fixture(scope="module")
def problems(smoke_world):
    return load_problems(smoke_world, "train")[:60]


_BOUND: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _world_bound(smoke_params):
    """Drafts stay within the smoke world's value range, as the stages' drafts stay within the world's."""
    _BOUND["max_value"] = smoke_params.world.max_value


def make_draft(problem, dialect, kind, rng):
    return _make_draft(problem, dialect, kind, rng, _BOUND["max_value"])


@pytest.fixture(scope="module")
def tiny_lm(smoke_params, tok):
    spec = smoke_params.model("llama")
    assert spec.hidden == 32 and spec.layers == 2
    return build_model(spec, tok, 0)


def true_steps(p):
    vals = p.values
    return [(q, *q.operands(vals), q.value) for q in p.derived]


# --------------------------------------------------------------------------- rejection sampling


def test_fragment_filter_drops_cutoff_repeated_and_answerless(problems):
    p = next(q for q in problems if q.steps >= 2)
    steps = true_steps(p)
    good = render_solution(p, "qwen")
    repeated = render_steps(p, "qwen", [steps[0]] + steps, p.answer)
    no_answer = render_steps(p, "qwen", steps, None)
    assert fragment_reason(Sample(good, 9, True), verify(p, good)) is None
    assert fragment_reason(Sample(good, 9, False), verify(p, good)) == "unfinished"  # cut off by the length limit
    assert fragment_reason(Sample(repeated, 9, True), verify(p, repeated)) == "repeated_sentence"
    assert fragment_reason(Sample(no_answer, 9, True), verify(p, no_answer)) == "no_answer"
    assert fragment_reason(Sample("", 0, True)) == "empty"


def test_select_traces_solvable_set_stats_and_seeded_choice(problems):
    ps = [q for q in problems if q.steps >= 2][:4]
    wrong = [make_draft(q, "qwen", "arithmetic", np.random.default_rng(0)).text for q in ps]
    good = {d: [render_solution(q, d) for q in ps] for d in SMALL_DIALECTS}
    rep = render_steps(ps[2], "qwen", [true_steps(ps[2])[0]] + true_steps(ps[2]), ps[2].answer)
    samples = [
        [Sample(wrong[0], 5, True), Sample(good["qwen"][0], 5, True), Sample(good["llama"][0], 5, True)],
        [Sample(good["qwen"][1], 5, False), Sample(wrong[1], 5, True)],  # the correct one is cut off
        [Sample(rep, 5, True)],  # correct answer but a repeated sentence
        [Sample(wrong[3], 5, True), Sample("", 0, True)],
    ]
    res = select_traces([tiny_item(p) for p in ps], samples, seed=0, wall_s=2.0)
    assert res.solvable == [ps[0].pid]
    st = res.stats
    assert st["n_samples"] == 8 and st["kept"] == 5
    assert st["filtered"] == {"unfinished": 1, "empty": 1, "repeated_sentence": 1, "no_answer": 0}
    assert st["solvable_fraction"] == 0.25
    assert st["pass_rate"] == pytest.approx(4 / 8)  # answer-correct samples, filtered or not
    assert st["kept_pass_rate"] == pytest.approx(2 / 5)
    assert st["samples_per_s"] == pytest.approx(4.0)
    # the choice is a pure function of (seed, pid): same under another problem order, varies with the seed
    again = select_traces([tiny_item(p) for p in ps[::-1]], samples[::-1], seed=0)
    assert again.traces[ps[0].pid] == res.traces[ps[0].pid]
    picks = {select_traces([tiny_item(p) for p in ps], samples, seed=s).traces[ps[0].pid].sample_index for s in range(20)}
    assert picks == {1, 2}


def test_rejection_sample_with_a_tiny_model(tiny_lm, tok, problems):
    res = rejection_sample(tiny_lm, tok, [tiny_item(p) for p in problems[:3]], n=2, temperature=1.0, seed=0, max_new_tokens=8, batch_size=6)
    st = res.stats
    assert st["n_samples"] == 6 and st["kept"] + sum(st["filtered"].values()) == 6
    assert st["samples_per_s"] > 0 and 0 <= st["solvable_fraction"] <= 1
    assert all(len(v) == 2 for v in res.samples.values())
    with pytest.raises(ValueError, match="temperature"):
        rejection_sample(tiny_lm, tok, [tiny_item(problems[0])], n=2, temperature=0.0, seed=0)


# --------------------------------------------------------------------------- oracle: drafts and targets


@pytest.mark.parametrize("dialect", SMALL_DIALECTS)
def test_drafts_fail_for_every_mistake_kind_and_targets_keep_their_dialect(problems, dialect):
    rng = np.random.default_rng(1)
    seen = Counter()
    for p in problems[:30]:
        for kind in DRAFT_KINDS:
            d = make_draft(p, dialect, kind, rng)
            if d is None:  # a wrong operand needs another quantity or a constant
                assert kind == "operand"
                continue
            seen[kind] += 1
            v = verify(p, d.text)
            assert v.all_valid == (kind == "correct"), (kind, d.text)
            if kind in ("arithmetic", "operand"):
                assert not v.correct  # the error propagates to the answer
            if kind == "skip":
                assert v.correct and len(v.atoms) == p.steps - 1
            if kind == "cutoff":
                assert not v.has_answer
            style = oracle_target("style", p, d.text, d.dialect)
            assert verify(p, style).all_valid and uniform_dialect(p, style) == dialect
            refine = oracle_target("refine", p, d.text, d.dialect)
            assert verify(p, refine).all_valid and uniform_dialect(p, refine) == "oracle"
            # minimal intervention: the draft's valid steps keep their content (as written) in both repairs
            kept = valid_content(p, d.text)
            assert {k: valid_content(p, style)[k] for k in kept} == kept
            assert {k: valid_content(p, refine)[k] for k in kept} == kept
            if kind != "skip":  # (a skipped step renumbers the numbered dialect's later steps)
                assert all(s.text in style for s in verify(p, d.text).steps if s.valid)
    assert all(seen[k] > 5 for k in DRAFT_KINDS), seen
    synth = oracle_target("synth", problems[0])
    assert verify(problems[0], synth).all_valid and uniform_dialect(problems[0], synth) == "oracle"


def test_refine_keeps_the_drafts_valid_step_content(problems):
    p = next(q for q in problems if any(x.op == "together" and q.values[x.args[0]] != q.values[x.args[1]] for x in q.derived))
    steps = [(q, b, op, a, r) if q.op == "together" else (q, a, op, b, r) for q, a, op, b, r in true_steps(p)]
    draft = render_steps(p, "llama", steps, p.answer)  # commuted operands: still valid
    assert verify(p, draft).all_valid
    refine = oracle_target("refine", p, draft)
    q, a, op, b, r = next(s for s in steps if s[0].op == "together")
    assert f"{q.name} = {a} {op} {b} = {r} ;" in refine
    assert oracle_target("style", p, draft) == draft  # nothing to repair: the style repair is the draft


def test_mode_training_examples(problems, tok):
    recs = mode_training_records(problems[:20], seed=0, drafts_per_problem=2, max_value=_BOUND["max_value"])
    assert Counter(r["mode"] for r in recs) == {"synth": 20, "refine": 40, "style": 40}
    assert len({r["kind"] for r in recs if r["mode"] != "synth"}) >= 4
    for r in recs:
        assert r["prompt"].startswith(f"<bos> <{r['mode']}> ")
        if r["mode"] == "style":
            assert uniform_dialect(next(p for p in problems if p.pid == r["pid"]), r["target"]) == r["dialect"]
    exs = mode_training_examples(problems[:20], tok, seed=0)
    assert len(exs) == 60
    assert all(tok.unk_token_id not in e.prompt_ids + e.target_ids for e in exs)
    assert mode_training_examples(problems[:20], tok, seed=0) == exs  # deterministic


# --------------------------------------------------------------------------- oracle runs


def test_oracle_run_with_a_tiny_model_counts_retries_and_failures(tiny_lm, tok, problems):
    ps = problems[:3]
    drafts = [render_solution(p, "qwen") for p in ps]
    proposer = model_proposer(tiny_lm, tok, seed=0, max_new_tokens=6, batch_size=8)
    res = oracle_run(proposer, "refine", [tiny_item(p) for p in ps], drafts, max_retries=1)
    st = res.stats
    assert st["n"] == 3 and st["kept"] + st["failed"] == 3
    assert sum(st["failed_by_reason"].values()) == st["failed"]
    assert set(res.failed) | set(res.outputs) == {p.pid for p in ps}
    assert all(res.attempts[pid] == 2 for pid in res.failed)  # every failure was retried once
    assert st["attempts"] == 3 + (3 - round(st["first_try_pass_rate"] * 3))
    for pid, out in res.outputs.items():  # an untrained model almost never passes; if it does, it verified
        assert verify(next(p for p in ps if p.pid == pid), out).all_valid


def test_oracle_run_retries_then_keeps_only_verified_outputs(problems):
    ps = problems[:6]
    drafts = [make_draft(p, "deepseek", "arithmetic", np.random.default_rng(0)) or make_draft(p, "deepseek", "skip", np.random.default_rng(0))
              for p in ps]
    drafts = [d.text for d in drafts]

    its = [tiny_item(p) for p in ps]

    def flaky(mode, items, ds, attempt):  # wrong for even problems on the first try only
        outs = expert_oracle(mode, items, ds, attempt)
        return [o if attempt > 0 or its.index(it) % 2 else "garbage ." for o, it in zip(outs, items)]

    res = oracle_run(flaky, "style", its, drafts, max_retries=2)
    assert res.stats["kept"] == 6 and res.stats["first_try_pass_rate"] == 0.5 and res.stats["attempts"] == 9
    assert [res.attempts[p.pid] for p in ps] == [2, 1, 2, 1, 2, 1]
    for p in ps:
        assert verify(p, res.outputs[p.pid]).all_valid and uniform_dialect(p, res.outputs[p.pid]) == "deepseek"
    # a style output in the oracle's dialect is never kept; an unfinished one neither
    wrong_style = lambda mode, probs, ds, a: expert_oracle("refine", probs, ds, a)  # noqa: E731
    bad = oracle_run(wrong_style, "style", its, drafts, max_retries=1)
    assert bad.stats["kept"] == 0 and bad.stats["failed_by_reason"]["dialect_mismatch"] == 6
    cut = lambda mode, probs, ds, a: [Sample(t, 5, False) for t in expert_oracle(mode, probs, ds, a)]  # noqa: E731
    assert oracle_run(cut, "synth", its, max_retries=0).stats["failed_by_reason"]["unfinished"] == 6
    with pytest.raises(ValueError, match="drafts"):
        oracle_run(expert_oracle, "refine", its, None)
    with pytest.raises(ValueError, match="mode"):
        oracle_run(expert_oracle, "rewrite", its)



def test_held_out_eval_first_try_retries_and_breakdowns(problems):
    from reasonlab.paradox.drivers.oracle_modes import held_out_eval

    ps = [p for p in problems if p.steps >= 2][:8]
    its = [tiny_item(p) for p in ps]
    rng = np.random.default_rng(0)
    kinds = ["correct", "arithmetic"] * 4
    drafts = [make_draft(p, "qwen", k, rng) or make_draft(p, "qwen", "skip", rng) for p, k in zip(ps, kinds)]

    def flaky(mode, items, ds, attempt):  # the 'arithmetic'-kind drafts fail on the first try only
        outs = expert_oracle(mode, items, ds, attempt)
        bad = {its[i].pid for i, d in enumerate(drafts) if d.kind != "correct"}
        return [o if attempt > 0 or it.pid not in bad else "garbage ." for o, it in zip(outs, items)]

    r = held_out_eval(flaky, "refine", its, drafts, max_retries=1)
    n_bad = sum(d.kind != "correct" for d in drafts)
    assert r["n"] == 8 and r["pass_rate"] == (8 - n_bad) / 8 and r["retried_pass_rate"] == 1.0
    assert r["by_kind"]["correct"]["pass_rate"] == 1.0
    assert all(v["pass_rate"] == 0.0 for k, v in r["by_kind"].items() if k != "correct")
    assert sum(v["n"] for v in r["by_kind"].values()) == sum(v["n"] for v in r["by_steps"].values()) == 8
    lo, hi = r["pass_ci"]
    assert lo < r["pass_rate"] < hi
    # without retries the sampled second chance is gone; synth takes no drafts and has no kinds
    assert held_out_eval(flaky, "refine", its, drafts, max_retries=0)["retried_pass_rate"] == r["pass_rate"]
    s = held_out_eval(expert_oracle, "synth", its, None, max_retries=0)
    assert s["pass_rate"] == 1.0 and s["by_kind"] == {}


def test_faithfulness_of_repairs_and_synthesis_to_their_drafts(problems):
    from reasonlab.paradox.faithfulness import faithfulness, kendall_tau, step_order, token_edit_distance
    from reasonlab.world.problems import valid_orders

    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0 and kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a", "b"], ["b", "x"]) is None and kendall_tau(["a", "c", "b"], ["a", "b", "c"]) == pytest.approx(1 / 3)
    assert token_edit_distance("a b c", "a b c") == 0 and token_edit_distance("a b c", "a x c d") == 2
    assert token_edit_distance("", "a b") == 2
    # problems with two valid orders: a draft in another than the oracle's, refined, style-aligned, synthesized
    ps = [p for p in problems if len(valid_orders(p)) > 1][:6]
    assert len(ps) >= 3
    drafts, outs = {}, {"synth": {}, "refine": {}, "style": {}}
    for p in ps:
        own = step_order(p, render_solution(p, "oracle"))  # the oracle's habit
        other = next(o for o in valid_orders(p) if list(o) != own)
        steps = [(q, *q.operands(p.values), q.value) for q in sorted(p.derived, key=lambda q: other.index(q.name))]
        drafts[p.pid] = render_steps(p, "qwen", steps, p.answer)
        assert step_order(p, drafts[p.pid]) == list(other)
        for m in ("refine", "style"):
            outs[m][p.pid] = oracle_target(m, p, drafts[p.pid])
        outs["synth"][p.pid] = render_solution(p, "oracle")
    f = faithfulness({p.pid: p for p in ps}, outs, drafts)
    assert f["style"]["kendall_tau"] == 1.0 and f["style"]["same_order_share"] == 1.0
    assert f["style"]["token_edit_distance"] == 0.0 and f["style"]["draft_dialect_share"] == 1.0
    assert f["refine"]["kendall_tau"] == 1.0 and f["refine"]["dialects"] == {"oracle": 1.0}
    assert f["refine"]["draft_dialect_share"] == 0.0 and f["refine"]["token_edit_distance"] > 0
    assert f["synth"]["kendall_tau"] < 1.0 and f["synth"]["same_order_share"] < 1.0  # the oracle's own order
    assert f["refined_differs_share"] == 1.0 and f["n_refined_and_synth"] == len(ps)
    same = faithfulness({p.pid: p for p in ps}, {"refine": outs["synth"], "synth": outs["synth"]}, drafts)
    assert same["refined_differs_share"] == 0.0  # refinement that is only synthesis is caught
    assert faithfulness({}, {"refine": {}}, {})["refined_differs_share"] is None

def test_prompts_tiny_and_paper(tok, smoke_params):
    assert oracle_prompt("refine", "P", "D") == "<bos> <refine> P <draft> D <sol>"
    assert oracle_prompt("synth", "P") == "<bos> <synth> P <sol>"
    tc = smoke_params.paradox.templates  # the one source of the paper profile's prompts: conf/paradox
    msgs = chat_messages("style", "What is 2+2?", "2+2=5", tc.modes(), tc.system)
    assert msgs[0]["role"] == "system" and "2+2=5" in msgs[-1]["content"] and "\\boxed{}" in msgs[-1]["content"]
    with pytest.raises(ValueError, match=r"refine: missing placeholders \['draft'\]"):
        TemplatesConfig(system="s", synth="{problem}", refine="{problem}", style="{problem} {draft}")
    with pytest.raises(ValueError, match=r"synth: unknown placeholders"):
        TemplatesConfig(system="s", synth="{problem} {answer}", refine="{problem}{draft}", style="{problem}{draft}")
    with pytest.raises(ValueError, match="chat template"):
        chat_prompt(tok, "synth", "q", None, tc.modes())
    t = copy.deepcopy(tok)
    t.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]"
    s = chat_prompt(t, "refine", "Q?", "my draft", tc.modes(), tc.system)
    assert s.startswith("[system]") and "my draft" in s and s.endswith("[assistant]")
    with pytest.raises(ValueError, match="templates"):  # a chat oracle needs the templates
        model_proposer(None, t, seed=0)


# --------------------------------------------------------------------------- variants


def _rft(problems):
    """An RFT result from handmade samples: correct traces, correct-answer traces with a skipped step, failures."""
    ps = problems[:12]
    samples = []
    for i, p in enumerate(ps):
        rng = np.random.default_rng(i)
        d = SMALL_DIALECTS[i % 3]
        if i % 4 == 3:
            samples.append([Sample(make_draft(p, d, "cutoff", rng).text, 5, True)])  # unsolved
        elif i % 4 == 2:
            samples.append([Sample(make_draft(p, d, "skip", rng).text, 5, True)])  # right answer, a step missing
        else:
            samples.append([Sample(render_solution(p, d), 5, True)])
    return ps, select_traces([tiny_item(p) for p in ps], samples, seed=0)


def test_five_variants_share_ids_and_oracle_outputs_verify(problems, tiny_lm, tok):
    ps, rft = _rft(problems)
    assert rft.stats["solvable"] == 9
    broken = rft.solvable[4]

    def proposer(mode, items, drafts, attempt):  # expert, except it can never style-refine one problem
        outs = expert_oracle(mode, items, drafts, attempt)
        return ["nonsense ." if (mode == "style" and it.pid == broken) else o for o, it in zip(outs, items)]

    oracle = functools.partial(oracle_run, proposer, max_retries=1)
    items = [tiny_item(p) for p in ps]
    vs = build_variants(rft, items, oracle)
    assert set(vs.sets) == set(SETS)
    ids = assert_same_ids(vs.sets)
    assert ids == [pid for pid in rft.solvable if pid != broken] == vs.pids
    assert vs.report["n_solvable"] == 9 and vs.report["n_kept"] == 8
    assert vs.report["dropped"] == {broken: {"style": "invalid"}}
    assert vs.report["dropped_by_mode"]["style"] == {"invalid": 1}
    by_pid = {p.pid: p for p in ps}
    for v, ds in vs.sets.items():
        assert tuple(ds.column_names) == COLUMNS and set(ds["variant"]) == {v}
        assert ds["prompt"] == [prompt_text(by_pid[pid].text) for pid in ids]
    rft_sol = dict(zip(vs.sets["slm_rft"]["pid"], vs.sets["slm_rft"]["solution"]))
    expect = {"oracle_refined": "oracle", "oracle_synth": "oracle", "reference": "reference"}
    for v in ("oracle_refined", "oracle_synth", "style_aligned", "reference"):
        for pid, sol in zip(vs.sets[v]["pid"], vs.sets[v]["solution"]):
            p = by_pid[pid]
            assert verify(p, sol).all_valid, (v, sol)
            want = expect.get(v) or text_dialect(p, rft_sol[pid])
            assert uniform_dialect(p, sol) == want
    assert len(variant_examples(vs.sets["style_aligned"], tok)) == 8
    # a set that lost a row is caught, by name
    bad = dict(vs.sets, oracle_synth=vs.sets["oracle_synth"].select(range(7)))
    with pytest.raises(AssertionError, match="oracle_synth"):
        assert_same_ids(bad)
    # the analysis runs on the sets: style-aligned keeps the model's style, refine keeps the atoms
    own = [render_solution(by_pid[pid], "qwen") for pid in ids]
    rep = analyze_variants(tiny_lm, tok, vs.sets, items, own, batch_size=8)
    assert rep["oracle_refined"]["preservation"]["mean"] == 1.0
    assert rep["style_aligned"]["token_shift"]["tv_distance"] < rep["oracle_refined"]["token_shift"]["tv_distance"]
    assert rep["oracle_synth"]["quality"]["all_valid"] == 1.0


# --------------------------------------------------------------------------- reward model


def _lie(p, dialect):  # a fully formed answer in ``dialect`` with a wrong final number
    head, _, tail = render_solution(p, dialect).rpartition(str(p.answer))
    return head + str(p.answer + 1) + tail


def test_rm_pool_balanced_by_dialect(problems):
    """The default pool: exact dialect and kind counts, every pair within one dialect, hard negatives in every
    dialect, labels from the verifier only; a dialect-only scorer gets exactly 50 %."""
    by_pid = {p.pid: p for p in problems}
    failed = {p.pid: [_lie(p, d) for d in ("qwen", "llama", "deepseek")] for p in problems}
    cands = pool_candidates(problems, seed=0, failed=failed, max_value=_BOUND["max_value"])
    comp = PoolComposition(n_pairs=120, chosen_oracle_share=0.5, rejected_oracle_share=0.5, hard_share=0.25,
                           rft_failed_share=0.2)
    pool = build_rm_pool(problems, cands, comp, seed=0)
    assert len(pool.pairs) == 120 and pool.cross_dialect_share == 0.0
    assert pool.dialects["chosen"] == pool.dialects["rejected"] == {"oracle": 0.5, "qwen": 20 / 120,
                                                                     "llama": 20 / 120, "deepseek": 20 / 120}
    assert pool.kinds["oracle"] == {"hard": 0.25, "wrong": 0.75, "rft_failed": 0.0}
    for d in ("qwen", "llama", "deepseek"):  # 20 rejected each: 5 hard, 4 failed samples, 11 wrong
        assert pool.kinds[d] == {"hard": 5 / 20, "wrong": 11 / 20, "rft_failed": 4 / 20}
    for pr in pool.pairs:  # labels are validity only; the kinds are what they say
        p = by_pid[pr.pid]
        assert verify(p, pr.chosen).all_valid and not verify(p, pr.rejected).all_valid
        assert text_dialect(p, pr.chosen) == pr.chosen_dialect == pr.rejected_dialect == text_dialect(p, pr.rejected)
        assert verify(p, pr.rejected).correct == (pr.rejected_kind == "hard")
        assert (pr.rejected in failed[pr.pid]) == (pr.rejected_kind == "rft_failed")
    assert len({pr.pid for pr in pool.pairs}) > 40  # spread over problems
    scorer = dialect_scorer(pool.pairs)
    assert set(scorer.values()) == {0.0} and dialect_only_accuracy(scorer, pool.pairs) == 0.5
    # any dialect-only scorer, not just the fitted one, ties on every pair
    assert dialect_only_accuracy({"oracle": 1.0, "qwen": -1.0}, pool.pairs) == 0.5
    # the same seed gives the same pool
    assert build_rm_pool(problems, cands, comp, seed=0).pairs == pool.pairs


def test_rm_pool_cross_dialect_pairs_keep_the_balance(problems):
    """Cross-dialect pairs pin the offset between dialects: the requested share of pairs is across dialects
    (each between the oracle and a small dialect, as many one way as the other), both sides' dialect shares
    are those of the balanced pool, and any dialect-only scorer still gets exactly 50 %."""
    cands = pool_candidates(problems, seed=0, max_value=_BOUND["max_value"])
    kw = dict(n_pairs=120, chosen_oracle_share=0.5, rejected_oracle_share=0.5, hard_share=0.25)
    flat = build_rm_pool(problems, cands, PoolComposition(**kw), seed=0)
    pool = build_rm_pool(problems, cands, PoolComposition(**kw, cross_dialect_share=0.4), seed=0)
    assert pool.cross_dialect_share == pytest.approx(48 / 120) and pool.dialects == flat.dialects
    cross = Counter((p.chosen_dialect, p.rejected_dialect) for p in pool.pairs if p.chosen_dialect != p.rejected_dialect)
    assert all("oracle" in k for k in cross)
    for d in ("qwen", "llama", "deepseek"):
        assert cross[("oracle", d)] == cross[(d, "oracle")] == 8
    by_pid = {p.pid: p for p in problems}
    for pr in pool.pairs:
        p = by_pid[pr.pid]
        assert verify(p, pr.chosen).all_valid and not verify(p, pr.rejected).all_valid
        assert text_dialect(p, pr.chosen) == pr.chosen_dialect and text_dialect(p, pr.rejected) == pr.rejected_dialect
    for scorer in (dialect_scorer(pool.pairs), {"oracle": 1.0, "qwen": -1.0}, {"llama": 2.0}):
        assert dialect_only_accuracy(scorer, pool.pairs) == 0.5
    with pytest.raises(ValueError, match="cross_dialect_share"):
        PoolComposition(**kw, cross_dialect_share=1.5)


def test_rm_pool_leaks_dialect_when_shares_differ(problems):
    """Chosen answers in the oracle's dialect more often than rejected ones: the excess pairs cross dialects and a
    dialect-only scorer fit on the pool beats chance by exactly half the excess."""
    cands = pool_candidates(problems, seed=0, max_value=_BOUND["max_value"])
    comp = {"n_pairs": 100, "chosen_oracle_share": 0.8, "rejected_oracle_share": 0.5, "hard_share": 0.0}
    pool = build_rm_pool(problems, cands, comp, seed=1)
    assert pool.dialects["chosen"]["oracle"] == 0.8 and pool.dialects["rejected"]["oracle"] == 0.5
    assert pool.cross_dialect_share == pytest.approx(0.3)
    assert all(pr.rejected_kind == "wrong" for pr in pool.pairs)
    held = build_rm_pool(problems, cands, comp, seed=2)
    assert dialect_only_accuracy(dialect_scorer(pool.pairs), held.pairs) == pytest.approx(0.5 + 0.3 / 2)
    acc = grouped_accuracy(held.pairs, [True] * 100, lambda p: p.chosen_dialect if p.chosen_dialect ==
                           p.rejected_dialect else None)
    assert sum(g["n"] for g in acc.values()) == 70 and acc["oracle"]["accuracy"] == 1.0


def test_rm_pool_errors_name_what_is_missing(problems):
    cands = pool_candidates(problems, seed=0, max_value=_BOUND["max_value"])
    with pytest.raises(ValueError, match=r"dialect '(qwen|llama|deepseek)' and kind 'rft_failed'"):  # no failed samples given
        build_rm_pool(problems, cands, {"n_pairs": 12, "rft_failed_share": 0.5}, seed=0)
    with pytest.raises(ValueError, match=r"composition\.hard_share"):
        PoolComposition(hard_share=1.5)
    with pytest.raises(ValueError, match=r"hard_share \+ rft_failed_share"):
        PoolComposition(hard_share=0.6, rft_failed_share=0.6)
    with pytest.raises(ValueError, match=r"unknown keys \['chosen'\]"):
        build_rm_pool(problems, cands, {"chosen": {"oracle": 1.0}})


def test_reward_model_training_lowers_pairwise_loss(problems, tok, smoke_params):
    spec = smoke_params.model("llama")
    pool = build_rm_pool(problems[:40], pool_candidates(problems[:40], seed=0, max_value=_BOUND["max_value"]), PoolComposition(n_pairs=32), seed=0)
    rm = build_scorer(spec, tok, seed=0)
    assert type(rm).__name__.endswith("ForSequenceClassification")
    assert rm.config.num_labels == 1 and rm.config.pad_token_id == tok.pad_token_id
    cfg = smoke_params.train_params("llama").model_copy(update={"steps": 30, "batch_size": 16, "lr": 3e-3, "warmup": 3})
    cfg = cfg.resolve(len(pool.pairs))
    stats = train_reward_model(rm, tok, problems[:40], pool, cfg, seed=0)
    assert stats["loss_after"] < stats["loss_before"] - 0.1, stats
    s = score(rm, tok, problems[:10], [render_solution(p, "oracle") for p in problems[:10]], batch_size=4)
    assert s.shape == (10,) and np.isfinite(s).all()
    # batching does not change scores (padding is handled)
    s1 = score(rm, tok, problems[:10], [render_solution(p, "oracle") for p in problems[:10]], batch_size=1)
    np.testing.assert_allclose(s, s1, atol=1e-4)
    summ = score_summary(s)
    assert summ["ci95"][0] <= summ["mean"] <= summ["ci95"][1] and summ["n"] == 10


# --------------------------------------------------------------------------- analysis


def test_flaw_profile_counts_the_flaws_behind_right_answers(problems):
    """Right answers only: a fully valid trace has no flaw, a skipped step is a flaw (an unstated input or a
    missing quantity), a trace with the answer alone has no steps; wrong answers are not counted."""
    multi = [p for p in problems if p.steps >= 2][:20]
    rng = np.random.default_rng(0)
    valid = [verify(p, render_solution(p, "qwen")) for p in multi]
    skips = [verify(p, make_draft(p, "qwen", "skip", rng).text) for p in multi]
    bare = [verify(p, DIALECTS["llama"].render_answer(p.answer) + " .") for p in multi[:5]]
    wrong = [verify(p, make_draft(p, "qwen", "arithmetic", rng).text) for p in multi]
    wrong = [v for v in wrong if not v.correct]
    assert all(v.correct for v in valid + skips + bare) and wrong
    prof = flaw_profile(valid + skips + bare + wrong)
    assert set(prof["by_kind"]) == set(FLAW_KINDS)
    assert prof["n_correct"] == 45 and prof["flawed_share"] == pytest.approx(25 / 45)
    assert prof["by_kind"]["no_steps"] == pytest.approx(5 / 45)
    skip_flaws = flaw_profile(skips)["by_kind"]  # every skip draft shows a flaw of a kind that names it
    assert flaw_profile(skips)["flawed_share"] == 1.0 and max(skip_flaws["order"], skip_flaws["missing"]) > 0
    assert skip_flaws["arithmetic"] == 0.0 and flaw_profile(valid)["flawed_share"] == 0.0
    assert all(v == 0.0 for v in flaw_profile(valid)["by_kind"].values())
    assert np.isnan(flaw_profile(wrong)["flawed_share"]) and flaw_profile(wrong)["n_correct"] == 0


def test_flaw_profile_is_undefined_without_a_step_checker():
    """A hub verdict (free-form math) has a right answer but no steps: its flaws are unknown, not zero."""
    from reasonlab.world.hub import MathVerdict

    prof = flaw_profile([MathVerdict(answer="4", correct=True), MathVerdict(answer="5", correct=False)])
    assert prof["n_correct"] == 1 and np.isnan(prof["flawed_share"])
    assert all(np.isnan(v) for v in prof["by_kind"].values())


def test_perplexity_quarters_are_consistent_with_global(tiny_lm, tok, problems):
    ps = problems[:6]
    prompts = [prompt_text(p.text) for p in ps]
    sols = [render_solution(p, SMALL_DIALECTS[i % 3]) for i, p in enumerate(ps)]
    r = perplexity(tiny_lm, tok, prompts, sols, batch_size=4)
    assert r["n_tokens"] == sum(len(encode(tok, s)) + 1 for s in sols)  # solution tokens and <eos>
    qs = r["quarters"]
    assert sum(q["n_tokens"] for q in qs.values()) == r["n_tokens"]
    logppl = sum(q["n_tokens"] * math.log(q["ppl"]) for q in qs.values()) / r["n_tokens"]
    assert math.exp(logppl) == pytest.approx(r["ppl"], rel=1e-9)
    assert r["ppl"] == pytest.approx(perplexity(tiny_lm, tok, prompts, sols, batch_size=1)["ppl"], rel=1e-4)
    assert list(quarter_index(5)) == [0, 0, 1, 2, 3] and list(quarter_index(1)) == [0]
    hand = perplexity_from_nll([np.array([1.0, 1.0, 3.0, 3.0]), np.array([2.0])])
    assert hand["quarters"]["Q1"]["nll"] == pytest.approx(1.5) and hand["quarters"]["Q2"]["n_tokens"] == 1
    assert hand["nll"] == pytest.approx(2.0)


def test_token_shift_and_semantic_preservation(problems):
    ps = problems[:20]
    oracle = [render_solution(p, "oracle") for p in ps]
    qwen = [render_solution(p, "qwen") for p in ps]
    sh = token_shift(oracle, qwen, top=5)
    assert sh["symbolic_share"] > sh["ref_symbolic_share"] and sh["tv_distance"] > 0.2
    assert {"####", ";"} & {t["token"] for t in sh["top"] if t["delta"] > 0}
    assert token_shift(qwen, qwen)["tv_distance"] == 0
    p = next(q for q in ps if q.steps >= 3)
    skip = make_draft(p, "qwen", "skip", np.random.default_rng(0)).text
    assert semantic_preservation(p, skip, oracle_target("refine", p, skip)) == 1.0
    assert semantic_preservation(p, skip, oracle_target("style", p, skip), strict=True) == 1.0
    slip = make_draft(p, "qwen", "arithmetic", np.random.default_rng(0))
    assert semantic_preservation(p, render_solution(p, "qwen"), slip.text) == pytest.approx((slip.step - 1) / p.steps)
    assert math.isnan(semantic_preservation(p, "nothing here .", render_solution(p, "qwen")))
