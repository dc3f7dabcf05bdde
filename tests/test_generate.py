import pytest

from reasonlab.generate import SamplingConfig, generate, pick_backend
from reasonlab.models.data import prompt_text
from reasonlab.models.zoo import build_model
from reasonlab.world.build import load_problems
from reasonlab.models.zoo import load_tokenizer


@pytest.fixture(scope="module")
def model_tok(smoke_params, smoke_world):
    tok = load_tokenizer(smoke_world / "tokenizer")
    return build_model(smoke_params.model("qwen"), tok, 0), tok


def test_sampling_is_deterministic_under_a_seed(model_tok, smoke_world):
    model, tok = model_tok
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_easy")[:5]]
    cfg = SamplingConfig(n=3, temperature=1.0, max_new_tokens=12, seed=7, batch_size=6)
    a = generate(model, tok, prompts, cfg)
    b = generate(model, tok, prompts, cfg)
    c = generate(model, tok, prompts, SamplingConfig(n=3, temperature=1.0, max_new_tokens=12, seed=8, batch_size=6))
    assert [[s.text for s in r] for r in a] == [[s.text for s in r] for r in b]
    assert [[s.text for s in r] for r in a] != [[s.text for s in r] for r in c]
    assert len(a) == 5 and all(len(r) == 3 for r in a)
    assert all(s.n_tokens <= 12 for r in a for s in r)


def test_greedy_batched_equals_one_at_a_time(model_tok, smoke_world):
    model, tok = model_tok
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_medium")[:4]]
    cfg = SamplingConfig(n=1, temperature=0.0, max_new_tokens=10, batch_size=4)
    batched = [r[0].text for r in generate(model, tok, prompts, cfg)]
    single = [generate(model, tok, [p], cfg)[0][0].text for p in prompts]
    assert batched == single


def test_backend_selection():
    assert pick_backend("auto") == "transformers"  # no GPU / vllm here
    assert pick_backend("transformers") == "transformers"
    with pytest.raises(RuntimeError, match="vllm"):
        pick_backend("vllm")
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)


def _frequent_token(model, tok, prompts):
    """A token the untrained model emits in about half of the rows: used as <eos> so that rows end at different
    steps and some run to the limit."""
    import collections

    import torch

    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    new = out[:, enc["input_ids"].shape[1]:].tolist()
    rows_with = collections.Counter(t for r in new for t in set(r))  # rows in which each token appears
    return min(rows_with, key=lambda t: (abs(rows_with[t] - len(new) / 2), t))  # in about half of the rows


def test_greedy_decoding_equals_transformers_generate(model_tok, smoke_world):
    import torch

    from reasonlab.generate import sample_rows

    model, tok = model_tok
    tok.padding_side = "left"
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_medium")[:8]]
    eos = _frequent_token(model, tok, prompts)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        ref = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=eos)[:, enc["input_ids"].shape[1]:].tolist()
    rows = sample_rows(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=12, eos_id=eos,
                       temperature=0.0, top_p=1.0, keys=torch.arange(len(prompts)), compact_share=0.01)
    assert any(f for _, f in rows) and not all(f for _, f in rows)  # some rows end early, some run to the limit
    for (ids, finished), r in zip(rows, ref):
        expect = r[: r.index(eos)] if eos in r else r
        assert ids == expect and finished == (eos in r)


def test_dropping_finished_rows_does_not_change_samples(model_tok, smoke_world):
    import collections

    import torch

    from reasonlab.generate import sample_rows

    model, tok = model_tok
    tok.padding_side = "left"
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_easy")[:6]] * 4
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)

    def run(eos, share):
        return sample_rows(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=16, eos_id=eos,
                           temperature=1.0, top_p=0.95, keys=torch.arange(len(prompts)) + 3, compact_share=share)

    rows_with = collections.Counter(t for ids, _ in run(-5, 1.0) for t in set(ids))
    eos = min(rows_with, key=lambda t: (abs(rows_with[t] - len(prompts) / 2), t))
    runs = [run(eos, c) for c in (0.01, 0.5, 1.0)]
    assert 4 <= sum(f for _, f in runs[0]) <= len(prompts) - 4
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.8)])
def test_sampled_tokens_follow_the_model_distribution(model_tok, smoke_world, temperature, top_p):
    """First sampled token over 6000 rows of one prompt: frequencies match softmax(logits / T) restricted to
    the top-p nucleus (total variation distance)."""
    import torch

    from reasonlab.generate import sample_rows

    import copy

    model, tok = model_tok
    model = copy.deepcopy(model)
    head = model.get_output_embeddings().weight
    base = head.detach().clone()

    def dist(problem):
        enc = tok([prompt_text(problem.text)], return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            return enc, (model(**enc).logits[0, -1].float() / temperature).softmax(-1)

    def nucleus(d):  # how many tokens the top-p nucleus of a next-token distribution holds
        sp = d[1].sort(descending=True).values
        return int(((sp.cumsum(0) - sp) < top_p).sum())

    # an untrained model is near uniform: give it a shape, as sharp as leaves a nucleus of several tokens; then the
    # prompt with the widest nucleus, least peaked on ties (whatever the world's vocabulary)
    for scale in (30, 10, 3):
        with torch.no_grad():
            head.copy_(base * scale)
        enc, p = max((dist(q) for q in load_problems(smoke_world, "test_easy")[:12]),
                     key=lambda d: (nucleus(d), -float(d[1].max())))
        if nucleus((enc, p)) >= 3:
            break
    sp, order = p.sort(descending=True)
    keep = (sp.cumsum(0) - sp) < top_p
    assert int(keep.sum()) >= 3, "no prompt gives a nucleus of several tokens: the test could not fail"
    expect = torch.zeros_like(p)
    expect[order[keep]] = sp[keep] / sp[keep].sum()
    B = 6000
    rows = sample_rows(model, enc["input_ids"].repeat(B, 1), enc["attention_mask"].repeat(B, 1), max_new_tokens=1,
                       eos_id=-5, temperature=temperature, top_p=top_p, keys=torch.arange(B))
    got = torch.bincount(torch.tensor([ids[0] for ids, _ in rows]), minlength=len(p)).double()
    assert float(got[expect == 0].sum()) == 0.0
    inside = expect > 0

    def chi2_pvalue(expected_probs):
        # Pearson's test needs expected counts >= 5: cells below that are pooled into one cell
        e = expected_probs.double() / expected_probs.sum() * B
        o = got[inside]
        small = e < 5
        e = torch.cat([e[~small], e[small].sum().reshape(1)]) if small.any() else e
        o = torch.cat([o[~small], o[small].sum().reshape(1)]) if small.any() else o
        x = ((o - e) ** 2 / e).sum()
        df = torch.tensor(float(len(e) - 1), dtype=torch.double)
        return float(torch.special.gammaincc(df / 2, x / 2))

    assert chi2_pvalue(expect[inside]) > 1e-4
    # the test can tell: the same counts do not fit the distribution at another temperature
    assert chi2_pvalue((p.log() * temperature / (temperature + 0.5)).softmax(-1)[inside]) < 1e-4


def test_samples_do_not_depend_on_batch_size(model_tok, smoke_world):
    """Each row draws from its own (seed, prompt, sample) stream: one prompt per call or all at once, same samples."""
    model, tok = model_tok
    prompts = [prompt_text(p.text) for p in load_problems(smoke_world, "test_medium")[:6]]
    texts = [[[s.text for s in r] for r in generate(model, tok, prompts, SamplingConfig(
        n=3, temperature=1.0, max_new_tokens=10, seed=5, batch_size=b))] for b in (3, 9, 64)]
    assert texts[0] == texts[1] == texts[2]
    assert len({t for r in texts[0] for t in r}) > 6  # the samples of a prompt differ from each other


def test_uniforms_are_uniform_and_independent_of_the_batch():
    import torch

    from reasonlab.generate import row_keys, uniforms

    keys = row_keys(0, torch.arange(20000), torch.zeros(20000, dtype=torch.long))
    u = torch.stack([uniforms(keys, t) for t in range(3)])
    assert ((u > 0) & (u < 1)).all()
    hist = torch.histc(u.flatten().float(), bins=10, min=0, max=1) / u.numel()
    assert (hist - 0.1).abs().max() < 0.01
    assert abs(float(torch.corrcoef(u[:2])[0, 1])) < 0.03  # consecutive steps uncorrelated
    assert torch.equal(uniforms(keys[5:9], 2), u[2, 5:9])
    assert not torch.equal(row_keys(1, torch.arange(5), torch.zeros(5, dtype=torch.long)), keys[:5])


def _scripted_generate(items):
    """A stand-in for ``generate``: sample ``j`` of prompt ``i`` is the item's reference solution when
    ``(i + j) % 3 == 0``, else a wrong text; greedy (temperature 0) decodes are right on even prompts."""
    from reasonlab.generate import Sample

    by_prompt = {it.prompt: it for it in items}

    def fake(model, tok, prompts, cfg, backend="transformers", desc="", model_path=None):
        out = []
        for i, p in enumerate(prompts):
            right = [(i + j) % 3 == 0 for j in range(cfg.n)] if cfg.temperature > 0 else [i % 2 == 0]
            out.append([Sample(by_prompt[p].reference if r else "no answer", 3, True) for r in right])
        return out
    return fake


def test_suite_rows_and_per_problem_scores_agree_with_the_tier_metrics(smoke_world, monkeypatch):
    """``evaluate_suite(rows=True)`` keeps one row per sampled solution, whose per-problem shares average to the
    tier's Avg@k; the calibration stage's per-problem vectors and the probes' per-item shares are those shares."""
    import numpy as np

    import reasonlab.evaluate as E
    from reasonlab.quant.calib_align import probe_scores, suite_scores
    from reasonlab.quant.config import ValidationProbe
    from reasonlab.schema import SampledEval
    from reasonlab.world.tasks import open_task

    task = open_task(smoke_world)
    suite = {t: task.tier_items(t, 5) for t in ("easy", "medium")}
    items = [it for v in suite.values() for it in v]
    monkeypatch.setattr(E, "generate", _scripted_generate(items))
    ev = SampledEval(k=3, max_new_tokens=8, tiers=["easy", "medium"])
    plain = E.evaluate_suite(None, None, suite, ev, seed=0)
    full = E.evaluate_suite(None, None, suite, ev, seed=0, rows=True)
    assert "rows" not in plain and {k: v for k, v in full.items() if k != "rows"} == plain
    assert len(full["rows"]) == 10 * 3 and set(full["rows"][0]) == set(E.ROW_KEYS)
    expect = np.array([[(i + j) % 3 == 0 for j in range(3)] for i in range(5)]).mean(axis=1)
    for tier in suite:
        assert plain[tier]["avg_at_k"] == pytest.approx(expect.mean())
        assert plain[tier]["greedy"] == pytest.approx(0.6)
    out, per = suite_scores(None, None, suite, ev, seed=0)
    assert np.allclose(per, np.concatenate([expect, expect]))
    assert out["easy"]["avg_at_k_ci95"] == list(E.bootstrap_ci(expect, seed=0))
    probe = ValidationProbe(n_problems=5, k=3, temperature=1.0, max_new_tokens=8)
    assert np.allclose(probe_scores(None, None, suite["easy"], probe, seed=0), expect)
    acc = E.probe_accuracy(None, None, suite["easy"], k=3, temperature=1.0)
    assert acc == pytest.approx(expect.mean())


def test_greedy_off_skips_the_greedy_decodes_and_keeps_the_sampled_metrics(smoke_world, monkeypatch):
    import reasonlab.evaluate as E
    from reasonlab.schema import SampledEval
    from reasonlab.world.tasks import open_task

    suite = {"easy": open_task(smoke_world).tier_items("easy", 4)}
    fake = _scripted_generate(suite["easy"])
    calls = []

    def counting(model, tok, prompts, cfg, *a, **kw):
        calls.append(cfg.temperature)
        return fake(model, tok, prompts, cfg, *a, **kw)
    monkeypatch.setattr(E, "generate", counting)
    on = E.evaluate_suite(None, None, suite, SampledEval(k=3, max_new_tokens=8, tiers=["easy"]), seed=0)
    assert calls == [1.0, 0.0] and on["easy"]["greedy"] == pytest.approx(0.5)
    calls.clear()
    off = E.evaluate_suite(None, None, suite, SampledEval(k=3, max_new_tokens=8, tiers=["easy"], greedy=False),
                           seed=0, rows=True)
    assert calls == [1.0] and "greedy" not in off["easy"]
    assert {k: v for k, v in on["easy"].items() if k != "greedy"} == off["easy"]
    assert len(off["rows"]) == 4 * 3
