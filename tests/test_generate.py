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
