"""The paper profile's adapters, exercised on small local data sets shaped like the hub ones."""

import pytest
from datasets import Dataset

from reasonlab.evaluate import evaluate_tier
from reasonlab.world.hub import build_world_from_hub, check_math, extract_boxed, gold_answer
from reasonlab.world.tasks import open_task, write_task_file


def load_hub_items(world_dir, tier):
    return open_task(world_dir).tier_items(tier)

HUB = {
    "prompt_template": "{question}\nPut the final answer in \\boxed{{}}.",
    "train": {"path": "AI-MO/NuminaMath-CoT", "split": "train", "question": "problem", "solution": "solution"},
    "easy": {"path": "openai/gsm8k", "name": "main", "split": "test", "question": "question", "answer": "answer"},
    "medium": {"path": "HuggingFaceH4/MATH-500", "split": "test", "question": "problem", "answer": "answer"},
    "hard": {"path": "HuggingFaceH4/aime_2024", "split": "train", "question": "problem", "answer": "answer"},
    "general": {"path": "Salesforce/wikitext", "name": "wikitext-103-raw-v1", "split": "train", "text": "text"},
}

LOCAL = {
    "AI-MO/NuminaMath-CoT": Dataset.from_dict({"problem": ["1+1?", "2*3?"],
                                                "solution": ["1+1=2, so \\boxed{2}", "\\boxed{6}"]}),
    "openai/gsm8k": Dataset.from_dict({"question": ["Tom has 3 apples and buys 4. How many?"],
                                       "answer": ["3 + 4 = 7\n#### 7"]}),
    "HuggingFaceH4/MATH-500": Dataset.from_dict({"problem": ["Simplify 2/4."], "answer": ["\\frac{1}{2}"]}),
    "HuggingFaceH4/aime_2024": Dataset.from_dict({"problem": ["Find n."], "answer": ["204"]}),
    "Salesforce/wikitext": Dataset.from_dict({"text": [" The tower is tall .", "", " It was built ."]}),
}


def fake_loader(spec, seed):
    return LOCAL[spec["path"]]


def test_answer_extraction():
    assert extract_boxed("so \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert extract_boxed("a \\boxed{1} then \\boxed{{2}}") == "{2}"
    assert extract_boxed("#### 1,234") == "1,234"
    assert extract_boxed("nothing") is None
    assert gold_answer("work\n#### 1,234") == "1234"


def test_check_math():
    assert check_math("7", "3 + 4 = 7. \\boxed{7}").correct
    assert not check_math("7", "\\boxed{8}").correct
    assert not check_math("7", "no box").correct


def test_build_world_from_hub_and_eval_items(tmp_path):
    summary = build_world_from_hub(HUB, 0, tmp_path, loader=fake_loader)
    write_task_file(tmp_path, "hub", hub=HUB)
    assert summary == {"train": 2, "heldout": 2, "test_easy": 1, "test_medium": 1, "test_hard": 1, "general": 2}
    items = load_hub_items(tmp_path, "easy")
    assert items[0].prompt.startswith("Tom has 3 apples") and "\\boxed{}" in items[0].prompt
    assert items[0].check("so \\boxed{7}").correct and not items[0].check("\\boxed{6}").correct


def test_missing_column_is_named(tmp_path):
    bad = {**HUB, "medium": {**HUB["medium"], "question": "question_text"}}
    with pytest.raises(ValueError, match="question_text"):
        build_world_from_hub(bad, 0, tmp_path, loader=fake_loader)


def test_evaluate_tier_accepts_hub_items(tmp_path, smoke_params, smoke_world):
    """The same Avg@k code path runs on paper-world items (here with a tiny local model)."""
    from reasonlab.models.zoo import build_model
    from reasonlab.models.zoo import load_tokenizer

    build_world_from_hub(HUB, 0, tmp_path, loader=fake_loader)
    write_task_file(tmp_path, "hub", hub=HUB)
    tok = load_tokenizer(smoke_world / "tokenizer")
    model = build_model(smoke_params.model("qwen"), tok, 0)
    m, rec = evaluate_tier(model, tok, load_hub_items(tmp_path, "medium"), k=2, temperature=1.0, top_p=1.0,
                           max_new_tokens=4, batch_size=4, seed=0, tier="medium")
    assert m["avg@2"] == 0.0 and m["n_problems"] == 1 and len(rec) == 3
