"""Sampling: prompts in, ``n`` samples per prompt out, through one interface.

Backends:

* ``transformers`` (the CPU path): batched, left-padded ``model.generate`` with
  the KV cache, a progress bar, and a seed per chunk so the result is a pure
  function of (prompts, config).
* ``vllm``: chosen automatically when ``vllm`` imports and a GPU is present
  (``pip install .[gpu]``); same arguments, same output shape.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 1
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int = 0
    batch_size: int = 256  # sequences (prompts x n) per generate() call

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")


@dataclass(frozen=True)
class Sample:
    text: str
    n_tokens: int
    finished: bool  # ended with <eos> rather than by the length limit


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def pick_backend(requested: str = "auto") -> str:
    if requested == "auto":
        return "vllm" if vllm_available() else "transformers"
    if requested == "vllm" and not vllm_available():
        raise RuntimeError("eval.backend=vllm but vllm is not installed or no GPU is visible (pip install .[gpu])")
    if requested not in ("transformers", "vllm"):
        raise ValueError(f"unknown backend {requested!r}")
    return requested


def generate(model, tokenizer, prompts: list[str], cfg: SamplingConfig, backend: str = "transformers",
             desc: str = "generate", model_path: str | Path | None = None) -> list[list[Sample]]:
    """``cfg.n`` samples for each prompt; ``out[i][j]`` is sample ``j`` of prompt ``i``."""
    if backend == "vllm":
        if model_path is None:
            raise ValueError("the vllm backend needs model_path (a saved model directory or hub id)")
        return _generate_vllm(str(model_path), prompts, cfg)
    return _generate_hf(model, tokenizer, prompts, cfg, desc)


@torch.inference_mode()
def _generate_hf(model, tokenizer, prompts, cfg: SamplingConfig, desc: str) -> list[list[Sample]]:
    model.eval()
    tokenizer.padding_side = "left"
    eos = tokenizer.eos_token_id
    per_call = max(1, cfg.batch_size // cfg.n)  # prompts per generate() call
    # Sort by length so each chunk pads little; restore the order at the end.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].split()))
    out: list[list[Sample] | None] = [None] * len(prompts)
    greedy = cfg.temperature == 0
    chunks = [order[s : s + per_call] for s in range(0, len(order), per_call)]
    with tqdm(total=len(prompts) * (1 if greedy else cfg.n), desc=desc, unit="sample", mininterval=2.0) as bar:
        for ci, idx in enumerate(chunks):
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(cfg.seed * 100003 + ci)
            kw = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            n = 1 if greedy else cfg.n
            gen = model.generate(
                **enc, max_new_tokens=cfg.max_new_tokens, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos, use_cache=True, **kw,
            )
            new = gen[:, enc["input_ids"].shape[1] :]
            for r, row in enumerate(new):
                ids = row.tolist()
                finished = eos in ids
                if finished:
                    ids = ids[: ids.index(eos)]
                else:
                    ids = [t for t in ids if t != tokenizer.pad_token_id]
                s = Sample(tokenizer.decode(ids, skip_special_tokens=True).strip(), len(ids), finished)
                i = idx[r // n]
                if out[i] is None:
                    out[i] = []
                out[i].append(s)
            bar.update(len(idx) * n)
    if greedy and cfg.n > 1:
        out = [o * cfg.n for o in out]
    return out  # type: ignore[return-value]


def _generate_vllm(model_path: str, prompts, cfg: SamplingConfig) -> list[list[Sample]]:  # pragma: no cover - GPU only
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=cfg.seed)
    sp = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                        seed=cfg.seed, skip_special_tokens=True)
    res = llm.generate(prompts, sp)
    return [[Sample(o.text.strip(), len(o.token_ids), o.finish_reason == "stop") for o in r.outputs] for r in res]
