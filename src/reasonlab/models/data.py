"""Prompts and training examples built from the world's datasets."""

from __future__ import annotations

import numpy as np

from ..world.dialects import DIALECTS
from ..world.tokenizer import prompt_text
from .batching import Example


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def sft_example(tokenizer, prompt: str, solution: str) -> Example:
    """Prompt and target ids (the solution and the tokenizer's end-of-sequence token; the loss is on the target)."""
    return Example(encode(tokenizer, prompt), encode(tokenizer, solution) + [tokenizer.eos_token_id])


def dialect_mixture(n: int, native: str, other_share: float, seed: int, salt: str) -> list[str]:
    """For each of ``n`` training problems, the dialect its solution is shown in.

    ``native`` with probability ``1 - other_share``, otherwise one of the other dialects uniformly,
    as real small models have seen many notations but favour one.
    """
    others = [d for d in DIALECTS if d != native]
    rng = np.random.default_rng([seed, sum(map(ord, salt))])
    use_other = rng.random(n) < other_share
    pick = rng.integers(0, len(others), size=n)
    return [others[j] if o else native for o, j in zip(use_other, pick)]


def pretrain_examples(train_ds, tokenizer, native: str, other_share: float, seed: int, salt: str) -> tuple[list[Example], dict]:
    dialects = dialect_mixture(len(train_ds), native, other_share, seed, salt)
    texts, exs = train_ds["text"], []
    cols = {d: train_ds[f"sol_{d}"] for d in set(dialects)}
    for i, d in enumerate(dialects):
        exs.append(sft_example(tokenizer, prompt_text(texts[i]), cols[d][i]))
    counts = {d: dialects.count(d) for d in DIALECTS}
    return exs, counts
