"""Local stand-ins for the paper profile: data sets with the hub columns, tiny models under hub names.

The paper profile (``conf/profile/paper.yaml``) names hub models and data sets. Without the hub, its
code path runs on stand-ins of the same shape:

* **data sets**: one folder per hub data set, laid out as the hub repository is (a README whose YAML
  ``configs`` list the parquet files of each config and split) and with its columns, loaded by the same
  ``datasets.load_dataset(path, name, split=...)`` call (the ``paper_standin`` profile points ``path`` at the
  folder). Their problems come from the tiny world's generator, written as free-form math with
  ``\\boxed{}`` answers (GSM8K's ``#### n`` for GSM8K);
* **models**: tiny ``transformers`` models saved under the paper's hub ids in a Hugging Face cache
  (``HF_HUB_CACHE``, ``models--<org>--<name>/snapshots/<rev>``), so ``from_pretrained("Qwen/Qwen2.5-Math-1.5B")``
  resolves offline exactly as a downloaded model would; a byte-level BPE tokenizer with a ChatML chat template;
  a ``*ForSequenceClassification`` reward model. The causal LMs are trained briefly (the one training loop)
  on the stand-in problems, in both the plain prompt and the oracle's chat prompts, so that they solve some
  and the pipeline's sets are not empty.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

STANDIN_REV = "0" * 40
# architecture of each hub id of conf/profile/paper.yaml (and the reward model of conf/profile/paper_standin.yaml)
CAUSAL = {
    "Qwen/Qwen2.5-Math-1.5B": "qwen2",
    "Qwen/Qwen2.5-72B-Instruct": "qwen2",
    "meta-llama/Llama-3.2-3B-Instruct": "llama",
    "deepseek-ai/deepseek-math-7b-instruct": "llama",
    "Qwen/Qwen3-0.6B": "qwen3",
    "Qwen/Qwen3-1.7B": "qwen3",
}
REWARD = {"Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": "llama"}
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _hub_dir(cache: Path, repo_id: str) -> Path:
    d = cache / f"models--{repo_id.replace('/', '--')}"
    (d / "refs").mkdir(parents=True, exist_ok=True)
    (d / "refs" / "main").write_text(STANDIN_REV)
    snap = d / "snapshots" / STANDIN_REV
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def _dataset(root: Path, repo_id: str, splits: dict[str, dict[str, list]], config: str | None = None) -> Path:
    """A local folder shaped like a hub data set repository: README ``configs`` + parquet per split."""
    from datasets import Dataset

    d = root / repo_id
    sub = config or "default"
    files = []
    for split, cols in splits.items():
        (d / sub).mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(cols).to_parquet(str(d / sub / f"{split}-00000-of-00001.parquet"))
        files.append({"split": split, "path": f"{sub}/{split}-*.parquet"})
    card = {"configs": [{"config_name": sub, "data_files": files, **({} if config else {"default": True})}]}
    (d / "README.md").write_text("---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n")
    return d


def _solution(p) -> str:
    from reasonlab.world.dialects import DIALECTS, render_solution

    steps = render_solution(p, "reference").rsplit(DIALECTS["reference"].render_answer(p.answer), 1)[0].strip()
    return f"{steps} therefore the answer is \\boxed{{{p.answer}}} ."


def build_data(root: Path, seed: int = 0, n_train: int = 600, n_test: int = 12) -> dict:
    """The five data sets of the paper profile, with the hub columns; returns ``{repo_id: folder}``."""
    from reasonlab.world.corpus import general_corpus
    from reasonlab.world.problems import ProblemSpec, make_problems

    # short chains without distractors: the stand-in models (240 steps) must solve some problems so that every
    # paper-world stage has data to run on; these sets exercise the code path, they test no claim
    spec = ProblemSpec(branch_share=0.0, distractors=(0, 0), shuffle=False)
    train = make_problems(seed, n_train, [1, 2], spec, "n")
    easy, medium, hard = (make_problems(seed, n_test, s, spec, pre) for s, pre in (([1, 2], "g"), ([2, 3], "m"), ([4], "a")))
    out = {
        "AI-MO/NuminaMath-CoT": _dataset(root, "AI-MO/NuminaMath-CoT", {"train": {
            "source": ["standin"] * len(train), "problem": [p.text for p in train], "solution": [_solution(p) for p in train]}}),
        "openai/gsm8k": _dataset(root, "openai/gsm8k", {"test": {
            "question": [p.text for p in easy],
            "answer": [_solution(p).split(" therefore")[0] + f"\n#### {p.answer}" for p in easy]}}, config="main"),
        "HuggingFaceH4/MATH-500": _dataset(root, "HuggingFaceH4/MATH-500", {"test": {
            "problem": [p.text for p in medium], "solution": [_solution(p) for p in medium],
            "answer": [str(p.answer) for p in medium], "subject": ["Algebra"] * len(medium),
            "level": [1] * len(medium), "unique_id": [f"test/{p.pid}.json" for p in medium]}}),
        "HuggingFaceH4/aime_2024": _dataset(root, "HuggingFaceH4/aime_2024", {"train": {
            "id": list(range(len(hard))), "problem": [p.text for p in hard], "solution": [_solution(p) for p in hard],
            "answer": [str(p.answer) for p in hard], "url": [""] * len(hard), "year": ["2024"] * len(hard)}}),
        "Salesforce/wikitext": _dataset(root, "Salesforce/wikitext", {"train": {
            "text": [t for g in general_corpus(seed, 40) for t in ("", f" {g} ")]}}, config="wikitext-103-raw-v1"),
    }
    return {"paths": out, "train": train}


def _tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1200, special_tokens=specials,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=specials[1:], padding_side="left")
    tok.chat_template = CHATML
    return tok


def _training_texts(train, params: dict) -> list[tuple[str, str]]:
    """(prompt, solution) pairs: the plain prompt of the paper world, and the oracle's three chat prompts."""
    from reasonlab.paradox.oracle import chat_messages

    hub, tpl = params["world"]["hub"], params["paradox"]["templates"]
    modes = {m: tpl[m] for m in ("synth", "refine", "style")}
    pairs = []
    for i, p in enumerate(train):
        sol = _solution(p)
        pairs.append((hub["prompt_template"].format(question=p.text), sol))
        mode = ("synth", "refine", "style")[i % 3]
        msgs = chat_messages(mode, p.text, None if mode == "synth" else sol, modes, tpl["system"])
        pairs.append((msgs, sol))
    return pairs


def build_models(cache: Path, train, params: dict, steps: int = 240, seed: int = 0) -> None:
    """The tiny models of the paper's hub ids in the HF cache ``cache`` (one trained model per architecture)."""
    import torch

    from reasonlab.models.data import sft_example
    from reasonlab.models.train import train as train_loop
    from reasonlab.models.zoo import build_model, build_scorer
    from reasonlab.schema import ArchParams, TrainParams

    raw = _training_texts(train, params)
    texts = [t if isinstance(t, str) else " ".join(m["content"] for m in t) for t, _ in raw] + [s for _, s in raw]
    tok = _tokenizer(texts)
    pairs = [(t if isinstance(t, str) else tok.apply_chat_template(t, tokenize=False, add_generation_prompt=True), s)
             for t, s in raw]
    examples = [sft_example(tok, p, s) for p, s in pairs]
    cfg = TrainParams(steps=steps, batch_size=16, lr=3e-3, warmup=20, max_len=384, log_every=1000, ckpt_every=10_000)
    torch.set_num_threads(1)
    trained = {}
    for arch in sorted(set(CAUSAL.values())):
        spec = ArchParams(arch=arch, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128)
        model = build_model(spec, tok, seed)
        model.config.max_position_embeddings = 512
        train_loop(model, examples, cfg, pad_id=tok.pad_token_id, seed=seed, desc=f"stand-in {arch}")
        trained[arch] = model
    for repo_id, arch in CAUSAL.items():
        snap = _hub_dir(cache, repo_id)
        trained[arch].save_pretrained(snap)
        tok.save_pretrained(snap)
    for repo_id, arch in REWARD.items():
        snap = _hub_dir(cache, repo_id)
        build_scorer(ArchParams(arch=arch, hidden=32, layers=1, heads=2, intermediate=64), tok, seed).save_pretrained(snap)
        tok.save_pretrained(snap)


def build_standins(root: Path, conf_dir: Path) -> dict[str, str]:
    """Data sets and models under ``root``; returns the environment that points the paper profile at them."""
    from reasonlab.profiles import compose

    env = {"REASONLAB_STANDINS": str(root), "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        data = build_data(root / "datasets")
        build_models(root / "hub", data["train"], compose("paper_standin", conf_dir))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return env


if __name__ == "__main__":  # python tests/standins.py ROOT CONF_DIR: build the stand-ins (used by the tests)
    import sys

    build_standins(Path(sys.argv[1]), Path(sys.argv[2]))
