"""Build, save and load the tiny causal LMs (real ``transformers`` architectures).

The same :func:`load_causal_lm` takes a local directory (tiny world) or a hub
id (paper profile), so every later stage is indifferent to where a model came from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GPTNeoXConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from ..io import replace_dir
from ..schema import ArchParams


def arch_config(spec: ArchParams, tokenizer, **extra) -> PretrainedConfig:
    """The ``transformers`` config of ``spec.arch`` sized by ``spec`` (the one arch -> config dispatch)."""
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
        **extra,
    )
    kv = spec.kv_heads or spec.heads
    if spec.arch == "llama":
        return LlamaConfig(num_key_value_heads=kv, **common)
    if spec.arch == "qwen2":
        return Qwen2Config(num_key_value_heads=kv, **common)
    if spec.arch == "qwen3":
        return Qwen3Config(num_key_value_heads=kv, head_dim=spec.hidden // spec.heads, **common)
    if spec.arch == "gpt_neox":
        return GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, **common)
    raise ValueError(f"arch: unknown {spec.arch!r}")  # pragma: no cover - rejected by params validation


def build_model(spec: ArchParams, tokenizer, seed: int) -> PreTrainedModel:
    """A freshly initialised causal LM of ``spec.arch`` sized by ``spec`` (untied embeddings)."""
    cfg = arch_config(spec, tokenizer, tie_word_embeddings=False)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg)


def build_scorer(spec: ArchParams, tokenizer, seed: int) -> PreTrainedModel:
    """A freshly initialised ``*ForSequenceClassification`` with one output (a reward model)."""
    cfg = arch_config(spec, tokenizer, num_labels=1)
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(cfg)


def n_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def n_non_embedding_params(model: PreTrainedModel) -> int:
    emb = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return n_params(model) - emb


def _check_local(path_or_id: str | Path) -> None:
    p = Path(path_or_id)
    if (p.exists() or str(path_or_id).startswith((".", "/"))) and not (p / "config.json").exists():
        raise FileNotFoundError(f"no model at {p} (config.json missing): run the stage that writes it first")


def load_causal_lm(path_or_id: str | Path, dtype=torch.float32, **kw) -> PreTrainedModel:
    """Load a causal LM from a local directory or (paper profile) a hub id."""
    _check_local(path_or_id)
    model = AutoModelForCausalLM.from_pretrained(str(path_or_id), dtype=dtype, **kw)
    model.eval()
    return model


def load_scorer(path_or_id: str | Path, dtype=torch.float32) -> PreTrainedModel:
    """Load a reward model (``*ForSequenceClassification``) from a local directory or a hub id."""
    _check_local(path_or_id)
    model = AutoModelForSequenceClassification.from_pretrained(str(path_or_id), dtype=dtype)
    model.eval()
    return model


def load_tokenizer(path_or_id: str | Path) -> PreTrainedTokenizerFast:
    """The tokenizer of a model directory or hub id, exactly as its ``tokenizer.json`` defines it.

    ``AutoTokenizer`` would pick the class of the model's architecture and, for ``qwen2``, replace
    a saved word-level pre-tokenizer and decoder with Qwen2's byte-level ones (``'ann has 3'`` ->
    ``'annhas3'``): every prompt would be garbled. ``tokenizer.json`` is the full definition for
    hub models too, and ``tokenizer_config.json`` brings the special tokens and chat template.
    """
    p = Path(path_or_id)
    if p.is_dir() and not (p / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer.json in {p}")
    return PreTrainedTokenizerFast.from_pretrained(str(path_or_id))


def write_hub_pointer(out: str | Path, hub_id: str, **meta) -> dict:
    """The output of a stage whose model is a released one (paper profile): a folder whose ``meta.json``
    names the hub id, which later stages load (:func:`model_source`)."""
    from ..io import fresh_tmp_dir, write_json

    tmp = fresh_tmp_dir(out)
    write_json(tmp / "meta.json", {"hub_id": hub_id, **meta})
    replace_dir(tmp, out)
    return {"hub_id": hub_id}


def model_source(path: str | Path) -> str | Path:
    """What to load for a model stage output ``path``: the folder itself when it holds a model, or the hub id
    its ``meta.json`` names (the paper profile's released oracle or reward model, used as they are)."""
    path = Path(path)
    if (path / "config.json").exists():
        return path
    meta = path / "meta.json"
    hub_id = json.loads(meta.read_text()).get("hub_id") if meta.exists() else None
    if not hub_id:
        raise FileNotFoundError(f"no model at {path} (neither config.json nor a meta.json hub_id): "
                                "run the stage that writes it first")
    return hub_id


def load_lm(path_or_id: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """``(causal LM, tokenizer)`` of a model directory or hub id."""
    return load_causal_lm(path_or_id), load_tokenizer(path_or_id)


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
    replace_dir(tmp, out)
