"""Sampling: prompts in, ``n`` samples per prompt out, through one interface.

Backends:

* ``transformers`` (the CPU path): a ``transformers`` model's forward with its KV cache
  (``DynamicCache``), driven by :func:`sample_rows`: left-padded chunks of prompts sorted by length,
  finished rows dropped from the batch as they end, inverse-CDF sampling with counter-based uniforms per
  (seed, prompt, sample, step), so a sample is a pure function of (prompt index, config) whatever the batch
  size. Why not ``model.generate``: it keeps computing every
  finished row until the longest one ends and pays its per-step machinery (logits processors, stopping
  criteria) on models whose forward takes a millisecond; see ``benchmarks/``.
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
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    greedy = cfg.temperature == 0
    n = 1 if greedy else cfg.n
    per_call = max(1, cfg.batch_size // n)  # prompts per chunk
    # Sort by length so each chunk pads little; restore the order at the end.
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i].split()), i))
    out: list[list[Sample]] = [[] for _ in prompts]
    chunks = [order[s : s + per_call] for s in range(0, len(order), per_call)]
    device = next(model.parameters()).device
    with tqdm(total=len(prompts) * n, desc=desc, unit="sample", mininterval=2.0) as bar:
        for idx in chunks:
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            keys = row_keys(cfg.seed, torch.tensor(idx).repeat_interleave(n), torch.arange(n).repeat(len(idx)))
            rows = sample_rows(model, enc["input_ids"].repeat_interleave(n, 0).to(device),
                               enc["attention_mask"].repeat_interleave(n, 0).to(device),
                               max_new_tokens=cfg.max_new_tokens, eos_id=eos, temperature=cfg.temperature,
                               top_p=cfg.top_p, keys=keys)
            for r, (ids, finished) in enumerate(rows):
                ids = [t for t in ids if t != pad] if not finished else ids
                out[idx[r // n]].append(Sample(tokenizer.decode(ids, skip_special_tokens=True).strip(), len(ids), finished))
            bar.update(len(idx) * n)
    if greedy and cfg.n > 1:
        out = [o * cfg.n for o in out]
    return out


_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for 32-bit ``x`` in int64 without overflow (two 16-bit halves of ``c``)."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (the "lowbias32" mixer) of each element of ``x`` (int64 holding 32-bit values)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def row_keys(seed: int, prompt: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """The random stream of each row: a hash of (seed, prompt index, sample index)."""
    h = _hash32(torch.full_like(prompt, seed & _M32, dtype=torch.long))
    h = _hash32(h ^ prompt.long())
    return _hash32(h ^ _mul32(sample.long(), 0x9E3779B9))


def uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform in (0, 1) per row for decoding step ``step``: a pure function of the row's key and the step
    (counter-based), so a row draws the same numbers whatever batch, chunk or order it is decoded in."""
    h = _hash32(keys ^ _hash32(torch.full_like(keys, step)))
    return (h.double() + 0.5) / 2.0**32


def pick_tokens(logits: torch.Tensor, u: torch.Tensor | None, temperature: float, top_p: float) -> torch.Tensor:
    """The next token of each row: argmax (``u`` None), or the token where the cumulative probability of
    softmax(logits / temperature), restricted to the nucleus of mass ``top_p``, first reaches ``u``
    (inverse-CDF sampling)."""
    if u is None:
        return logits.argmax(-1)
    probs = (logits.double() / temperature).softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        outside = (sorted_p.cumsum(-1) - sorted_p) >= top_p  # tokens after the nucleus is full
        probs = probs.masked_fill(outside.scatter(-1, order, outside), 0.0)
    cdf = probs.cumsum(-1)
    target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, target).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def sample_rows(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int, eos_id: int,
                temperature: float, top_p: float, keys: torch.Tensor,
                compact_share: float = 0.125) -> list[tuple[list[int], bool]]:
    """Decode every row of a left-padded batch with the model's KV cache, until ``<eos>`` or ``max_new_tokens``.

    Returns, per row, the new token ids (without the ``<eos>``) and whether ``<eos>`` ended it. Rows that finish
    leave the batch (their cache rows are dropped once at least ``compact_share`` of the batch has finished), so
    the step cost follows the rows still running rather than the longest one. Row ``r`` samples with the
    uniforms of its own ``keys[r]`` (:func:`uniforms`), so what it draws does not depend on the other rows, on
    compaction or on chunking. ``temperature == 0`` is greedy.
    """
    from transformers import DynamicCache

    B = input_ids.shape[0]
    greedy = temperature == 0
    cache = DynamicCache(config=model.config)
    position = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position,
                   past_key_values=cache, use_cache=True).logits[:, -1]
    next_pos = position[:, -1] + 1
    mask = attention_mask
    live = torch.arange(B)  # original row of each row still in the batch
    live_keys = keys
    done = torch.zeros(B, dtype=torch.bool)  # finished, not yet dropped
    tokens = torch.full((B, max_new_tokens), -1, dtype=torch.long)
    finished = torch.zeros(B, dtype=torch.bool)
    for t in range(max_new_tokens):
        tok = pick_tokens(logits, None if greedy else uniforms(live_keys, t), temperature, top_p).cpu()
        write = ~done
        tokens[live[write], t] = tok[write]
        ended = write & (tok == eos_id)
        finished[live[ended]] = True
        done = done | ended
        if t == max_new_tokens - 1 or bool(done.all()):
            break
        if int(done.sum()) >= max(1, int(compact_share * len(live))):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep.to(input_ids.device))
            kd = keep.to(mask.device)
            live, live_keys, tok, done = live[keep], live_keys[keep], tok[keep], done[keep]
            mask, next_pos = mask[kd], next_pos[kd]
        mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
        logits = model(input_ids=tok[:, None].to(input_ids.device), attention_mask=mask,
                       position_ids=next_pos[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
        next_pos = next_pos + 1
    out = []
    for r in range(B):
        row = tokens[r]
        ids = row[row >= 0].tolist()
        if finished[r]:
            ids = ids[: ids.index(eos_id)]
        out.append((ids, bool(finished[r])))
    return out


def _generate_vllm(model_path: str, prompts, cfg: SamplingConfig) -> list[list[Sample]]:  # pragma: no cover - GPU only
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=cfg.seed)
    sp = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                        seed=cfg.seed, skip_special_tokens=True)
    res = llm.generate(prompts, sp)
    return [[Sample(o.text.strip(), len(o.token_ids), o.finish_reason == "stop") for o in r.outputs] for r in res]
