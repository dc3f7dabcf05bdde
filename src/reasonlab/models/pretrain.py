"""Base training of one model of the zoo on the world's training pool (its dialect mixture)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..checkpoint import CKPT_ROOT, Run
from ..io import setup_threads
from ..params import Params
from ..world.build import load_split
from .data import pretrain_examples
from .train import no_curves, train
from .zoo import build_model, load_lm, load_tokenizer, n_non_embedding_params, n_params, save_model_atomic


def pretrain(P: Params, name: str, world_dir: str | Path, out: str | Path, ckpt_root: str | Path = CKPT_ROOT,
             live_dir: str | Path | None = None) -> dict:
    """Train model ``name`` (or, in the paper profile, fetch its hub checkpoint) and save it to ``out``."""
    setup_threads()
    spec = P.model(name)
    if spec.hub_id:  # paper profile: the base model is a released checkpoint (no training curve)
        model, tok = load_lm(spec.hub_id)
        save_model_atomic(model, tok, out, {"hub_id": spec.hub_id, "model": name})
        no_curves(live_dir)
        return {"model": name, "hub_id": spec.hub_id, "params": n_params(model)}
    cfg = P.train_params(name)
    tok = load_tokenizer(Path(world_dir) / "tokenizer")
    ds = load_split(world_dir, "train")
    examples, mix = pretrain_examples(ds, tok, spec.dialect, spec.other_dialect_share, P.seed, name)
    cfg = cfg.resolve(len(examples))
    model = build_model(spec, tok, P.seed)
    run = Run(f"pretrain-{name}", {"spec": spec.model_dump(), "train": cfg.model_dump(), "seed": P.seed,
                                   "world": P.world.model_dump()}, ckpt_root)
    stats = run.train(model, lambda ck: train(model, examples, cfg, pad_id=tok.pad_token_id, seed=P.seed, ckpt_dir=ck,
                                              live_dir=live_dir, desc=f"pretrain {name}"), f"pretrain {name}")
    meta = {"model": name, "spec": spec.model_dump(), "train": cfg.model_dump(), "seed": P.seed, "dialect_mix": mix}
    save_model_atomic(model, tok, out, meta)
    shutil.rmtree(run.dir, ignore_errors=True)  # finished: the saved model supersedes the run's weights
    return {
        "model": name,
        "arch": type(model).__name__,
        "params": n_params(model),
        "non_embedding_params": n_non_embedding_params(model),
        "dialect_mix": mix,
        **stats,
    }
