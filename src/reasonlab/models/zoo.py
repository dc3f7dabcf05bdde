"""Build, save and load the tiny causal LMs (real ``transformers`` architectures).

The same :func:`load_causal_lm` takes a local directory (tiny world) or a hub
id (paper profile), so every later stage is indifferent to where a model came from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from ..params import ModelParams


def build_model(spec: ModelParams, tokenizer, seed: int) -> PreTrainedModel:
    """A freshly initialised model of ``spec.arch`` sized by ``spec``."""
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.intermediate,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    kv = spec.kv_heads or spec.heads
    if spec.arch == "llama":
        cfg = LlamaConfig(num_key_value_heads=kv, **common)
    elif spec.arch == "qwen2":
        cfg = Qwen2Config(num_key_value_heads=kv, **common)
    elif spec.arch == "qwen3":
        cfg = Qwen3Config(num_key_value_heads=kv, head_dim=spec.hidden // spec.heads, **common)
    elif spec.arch == "gpt_neox":
        cfg = GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, **common)
    else:  # pragma: no cover - rejected by params validation
        raise ValueError(f"unknown arch {spec.arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    return model


def n_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def n_non_embedding_params(model: PreTrainedModel) -> int:
    emb = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return n_params(model) - emb


def load_causal_lm(path_or_id: str | Path, dtype=torch.float32, **kw) -> PreTrainedModel:
    """Load a causal LM from a local directory or (paper profile) a hub id."""
    p = Path(path_or_id)
    if p.exists() or str(path_or_id).startswith((".", "/")):
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"no model at {p} (config.json missing): run its `pretrain` stage first")
    model = AutoModelForCausalLM.from_pretrained(str(path_or_id), dtype=dtype, **kw)
    model.eval()
    return model


def load_tokenizer_any(path_or_id: str | Path):
    """The tokenizer of a local model directory or (paper profile) a hub id.

    A local directory is loaded with ``PreTrainedTokenizerFast``, which uses its ``tokenizer.json``
    exactly. ``AutoTokenizer`` would pick the class of the model's architecture and, for ``qwen2``,
    replace the world's word-level pre-tokenizer and decoder with Qwen2's byte-level ones
    (``'ann has 3'`` -> ``'annhas3'``): every prompt would be garbled.
    """
    p = Path(path_or_id)
    if p.is_dir():
        if not (p / "tokenizer.json").exists():
            raise FileNotFoundError(f"no tokenizer.json in {p}")
        return PreTrainedTokenizerFast.from_pretrained(str(p))
    return AutoTokenizer.from_pretrained(str(path_or_id))


def code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def save_model_atomic(model: PreTrainedModel, tokenizer, out: str | Path, meta: dict) -> None:
    """``save_pretrained`` model + tokenizer + ``meta.json`` into a temp dir, then rename over ``out``."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "meta.json").write_text(json.dumps({**meta, "code_version": code_version()}, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
