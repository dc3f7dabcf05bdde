import json
import random

import pytest

from reasonlab.world.build import build_world, load_problems, load_split
from reasonlab.world.corpus import general_corpus
from reasonlab.world.dialects import DIALECTS, SMALL_DIALECTS, render_solution
from reasonlab.world.problems import ProblemSpec, make_problem, make_problems, problem_key
from reasonlab.models.zoo import load_tokenizer
from reasonlab.world.verifier import extract_answer, verify


def test_problem_is_pure_function_of_seed_and_index():
    a = make_problem(3, 17, 4)
    b = make_problem(3, 17, 4)
    c = make_problem(4, 17, 4)
    assert a == b and a.text == b.text
    assert a.text != c.text


def test_problem_graph_bounds_and_dependencies():
    spec = ProblemSpec(max_value=40)
    for p in make_problems(0, 300, [2, 3, 4, 5, 6, 7], spec, "x"):
        vals = p.values
        assert all(0 <= v <= 40 for v in vals.values())
        for q in p.derived + p.distractors:
            if q.op != "given":
                a, op, b = q.operands(vals)
                assert eval(f"{a} {op} {b}") == q.value
        # the target depends on every needed derived quantity (a chain or two merged branches), on no distractor
        deps, todo = set(), [p.target.name]
        while todo:
            args = p.quantity(todo.pop()).args
            deps.update(args)
            todo.extend(args)
        assert {q.name for q in p.derived[:-1]} <= deps
        assert not deps & {q.name for q in p.distractors}


def test_world_deterministic_and_no_leakage(smoke_params, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    sa = build_world(smoke_params.world, smoke_params.seed, a)
    sb = build_world(smoke_params.world, smoke_params.seed, b)
    assert sa == sb
    for split in ("train", "heldout", "validation", "test_easy", "test_medium", "test_hard", "general"):
        assert load_split(a, split).to_dict() == load_split(b, split).to_dict()
    # every split disjoint from every other by content (statements in any order), not only by id
    by_split = {s: {problem_key(p) for p in load_problems(a, s)}
                for s in ("train", "heldout", "validation", "test_easy", "test_medium", "test_hard")}
    names = sorted(by_split)
    # and by id: a pid names one problem in the whole world (random streams are keyed on it)
    pids = [p.pid for s in names for p in load_problems(a, s)]
    assert len(pids) == len(set(pids)), "a problem id is used in two splits"
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert not (by_split[x] & by_split[y]), f"{x} and {y} share problems"
    train = {problem_key(p) for p in load_problems(a, "train")}
    tests = {}
    for tier in ("easy", "medium", "hard"):
        tests[tier] = {problem_key(p) for p in load_problems(a, f"test_{tier}")}
        assert not (train & tests[tier]), f"train/test leakage in tier {tier}"
    assert not (tests["easy"] & tests["medium"]) and not (tests["medium"] & tests["hard"])
    hard_steps = {p.steps for p in load_problems(a, "test_hard")}
    train_steps = {p.steps for p in load_problems(a, "train")}
    assert min(hard_steps) > max(train_steps), "hard must have more steps than training shows"


def test_verifier_accepts_every_reference_solution_in_every_dialect(smoke_world):
    ds = load_split(smoke_world, "train")
    probs = load_problems(smoke_world, "train")
    for p, row in zip(probs, ds):
        for d in DIALECTS:
            v = verify(p, row[f"sol_{d}"])
            assert v.correct and v.all_valid and v.answer == p.answer, (d, row[f"sol_{d}"])
            assert v.dialect == d
            assert v.atoms == {q.name for q in p.derived}


def _corruptions(text: str, rng: random.Random):
    toks = text.split()
    nums = [i for i, t in enumerate(toks) if t.isdigit()]
    # 1. change one number (a step operand/result, or the answer)
    i = rng.choice(nums)
    t1 = toks.copy()
    t1[i] = str(int(t1[i]) + rng.choice([1, 2, 3]))
    yield " ".join(t1)
    # 2. change the final answer only
    t2 = toks.copy()
    t2[nums[-1]] = str(int(t2[nums[-1]]) + 1)
    yield " ".join(t2)
    # 3. drop the first step's sentence (a trace with a missing step)
    from reasonlab.world.verifier import split_sentences

    sents = split_sentences(text)
    yield " . ".join(sents[1:])
    # 4. cut off before the answer (a fragmentary generation)
    yield " . ".join(sents[:-1])


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_verifier_rejects_corrupted_solutions(dialect):
    rng = random.Random(0)
    for p in make_problems(1, 60, [2, 3, 4, 5], ProblemSpec(), "c"):
        good = render_solution(p, dialect)
        for bad in _corruptions(good, rng):
            assert not verify(p, bad).all_valid, (dialect, bad)


def test_verifier_step_checks_quantity_reference():
    p = make_problem(0, 5, 3)
    sol = render_solution(p, "qwen")
    # swap the quantity name of the first step for another person's: arithmetic fine, quantity wrong
    first = p.derived[0].name
    other = p.given[0].name
    bad = sol.replace(f"{first} has", f"{other} has", 1)
    v = verify(p, bad)
    assert v.steps[0].arithmetic_ok and not v.steps[0].quantity_ok
    assert not v.all_valid


def test_extract_answer_mixed_dialects():
    assert extract_answer("ann = 3 + 4 = 7 ; #### 7") == 7
    assert extract_answer("the answer is 5 . so the answer is 9 .") == 9
    assert extract_answer("no answer here") is None


def test_small_dialects_differ_in_surface_form():
    p = make_problem(0, 1, 4)
    texts = {d: render_solution(p, d) for d in DIALECTS}
    assert len(set(texts.values())) == len(DIALECTS)
    assert set(SMALL_DIALECTS) <= set(DIALECTS)
    assert len(texts["oracle"].split()) < min(len(texts[d].split()) for d in SMALL_DIALECTS)


def test_general_corpus_has_no_arithmetic():
    for para in general_corpus(0, 50):
        assert not any(t.isdigit() or t in "+-*=" for t in para.split())


def test_tokenizer_round_trip_and_no_unknowns(smoke_world):
    from transformers import PreTrainedTokenizerFast

    tok = load_tokenizer(smoke_world / "tokenizer")
    assert isinstance(tok, PreTrainedTokenizerFast)
    ds = load_split(smoke_world, "train")
    texts = list(ds["text"][:50]) + [ds[i][f"sol_{d}"] for i in range(20) for d in DIALECTS]
    texts += list(load_split(smoke_world, "general")["text"][:20])
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, t
        assert tok.decode(ids) == t
    prompt = "<bos> ann has 3 pens . <sol>"
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.convert_tokens_to_ids("<sol>")


def test_world_params_are_saved_beside_outputs(tmp_path, smoke_params):
    import subprocess
    import sys

    from conftest import ROOT

    params = tmp_path / "params.yaml"
    from reasonlab.profiles import compose, write_params

    write_params(compose("smoke", ROOT / "conf"), params)
    out, metrics = tmp_path / "world", tmp_path / "world.json"
    run = subprocess.run([sys.executable, str(ROOT / "stages/world.py"), "--params", str(params), "--out", str(out),
                          "--metrics", str(metrics)], check=True, capture_output=True, text=True)
    meta = json.loads((out / "params.json").read_text())
    assert meta["world"]["train_size"] == smoke_params.world.train_size
    assert not (tmp_path / "world.tmp").exists()
    # the world's self-check (metrics/world.json), and the numerics the stage ran with
    m = json.loads(metrics.read_text())
    assert m["heldout_pretrain_overlap"] == 0 and m["validation_test_overlap"] == 0
    assert m["verifier_valid_accepted"] == 1.0 and m["verifier_corrupt_flagged"] == 1.0
    lo, hi = smoke_params.world.distractors  # every problem has at least `lo` distractors, none has more than `hi`
    assert m["multi_order_share"] > 0.5 and (m["distractor_share"] == 1.0 if lo else 0 <= m["distractor_share"] <= 1)
    assert hi or m["distractor_share"] == 0.0
    assert m["splits"]["heldout"] == smoke_params.world.heldout_size
    assert "numerics avx2 (ATen AVX2, MKL_CBWR=AVX2" in run.stderr


def test_corrupt_world_split_names_the_file(tmp_path):
    bad = tmp_path / "train"
    bad.mkdir()
    (bad / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match=str(bad)):
        load_split(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="test_easy"):
        load_split(tmp_path, "test_easy")


def test_problem_key_ignores_statement_order_and_id():
    from dataclasses import replace

    p = make_problem(0, 5, 4)
    q = replace(p, pid="other", order=tuple(reversed(p.statement_order)))
    assert q.text != p.text and problem_key(q) == problem_key(p)
    assert problem_key(make_problem(0, 6, 4)) != problem_key(p)


def test_pretraining_texts_carry_each_family_s_order_habit(smoke_world):
    """A family acquires its order habit as it acquires its dialect: its pretraining solutions are written in it."""
    from reasonlab.world.dialects import DIALECT_HABIT
    from reasonlab.world.problems import valid_orders

    ds = load_split(smoke_world, "train")
    probs = load_problems(smoke_world, "train")
    multi = [(p, row) for p, row in zip(probs, ds) if len(valid_orders(p, limit=2)) > 1]
    assert len(multi) > 100
    for d, habit in DIALECT_HABIT.items():
        got = [verify(p, row[f"sol_{d}"]).habits for p, row in multi]
        assert all(habit in h for h in got), d
    # and the habits differ: the oracle's order is not qwen's on most multi-order problems
    differ = [verify(p, row["sol_oracle"]).order != verify(p, row["sol_qwen"]).order for p, row in multi]
    assert sum(differ) / len(differ) > 0.8
