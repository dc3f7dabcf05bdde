"""Checkpoints: content digests, safe weight files, the training state, and resumable runs.

* :func:`digest` content hash of a file or folder (what a run's key is made of);
* :func:`code_digest` hash of the package's source, so a checkpoint is resumed only by the code
  that wrote it;
* :func:`save_weights` / :func:`load_weights` model weights in safetensors (never pickle);
* :func:`save_train_state` / :func:`load_train_state` what the training loop needs to resume exactly
  (weights in safetensors; optimizer, scheduler and RNG state as tensors and plain values,
  loaded with ``torch.load(weights_only=True)``);
* :class:`Run` one resumable run under the checkpoint root (``.ckpt/``, outside the DVC outputs):
  its folder name carries a hash of everything that determines its result, code included; it
  resumes a killed training, reuses finished weights and caches evaluations.

A file that cannot be read stops with a message naming it; delete the run's folder to restart.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .io import params_hash, write_json

CKPT_ROOT = ".ckpt"
WEIGHTS = "model.safetensors"
TRAINER = "trainer.pt"
STATE = "checkpoint.json"


def digest(path: str | Path) -> str:
    """Content hash of a file or of a folder's files (recursively; ``meta.json`` files excluded:
    they carry the git commit that wrote the folder, not its content)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot hash {path}: it does not exist")
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file() and f.name != "meta.json")
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of every ``.py`` file of the ``reasonlab`` package (a changed line gives another key)."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ckpt_root(path: str | Path = CKPT_ROOT) -> Path:
    """The checkpoint folder, created with a ``.gitignore`` so nothing in it reaches git."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return root


# ----------------------------------------------------------------------------- weights


def save_weights(model, path: str | Path) -> None:
    """``model.state_dict()`` to a safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, path)


def load_weights(model, path: str | Path) -> None:
    """Load a safetensors file written by :func:`save_weights` into ``model`` (every key must match)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path))
        model.load_state_dict(state, strict=True)
    except Exception as e:
        raise RuntimeError(f"checkpoint {path} cannot be loaded ({type(e).__name__}: {e}); "
                           f"delete {path.parent} to start that run again") from e


def save_train_state(ckpt_dir: str | Path, model, step: int, trainer: dict[str, Any]) -> None:
    """The loop's state at ``step``: weights (safetensors), ``trainer`` (optimizer, scheduler, RNG:
    tensors and plain values only) and last ``checkpoint.json`` naming the step, so a checkpoint
    interrupted while being written is never taken for a complete one."""
    import torch

    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / STATE).unlink(missing_ok=True)
    save_weights(model, d / WEIGHTS)
    tmp = d / (TRAINER + ".tmp")
    torch.save({"step": step, **trainer}, tmp)
    os.replace(tmp, d / TRAINER)
    write_json(d / STATE, {"step": step})


def load_train_state(ckpt_dir: str | Path, model) -> tuple[int, dict[str, Any]] | None:
    """``(step, trainer)`` of the checkpoint in ``ckpt_dir`` (weights loaded into ``model``), or ``None``."""
    import torch

    d = Path(ckpt_dir)
    if not (d / STATE).exists():
        return None
    try:
        step = int(json.loads((d / STATE).read_text())["step"])
        trainer = torch.load(d / TRAINER, weights_only=True)
    except Exception as e:
        raise RuntimeError(f"checkpoint {d / TRAINER} is corrupt ({type(e).__name__}: {e}); "
                           f"delete {d} to restart that run from scratch") from e
    if trainer.get("step") != step:
        raise RuntimeError(f"checkpoint {d}: {STATE} says step {step}, {TRAINER} step {trainer.get('step')}; "
                           f"delete {d} to restart that run from scratch")
    load_weights(model, d / WEIGHTS)
    return step, trainer


def clear_train_state(ckpt_dir: str | Path) -> None:
    """Drop the resumable state (a finished run keeps only its final weights)."""
    d = Path(ckpt_dir)
    for name in (STATE, TRAINER, WEIGHTS):
        (d / name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- runs


class Run:
    """One resumable run: ``<root>/<name>-<key>/`` with ``key`` a hash of ``spec`` and of the code.

    * :meth:`train` trains through ``fn(ckpt_dir)`` (the loop resumes from the folder's state) and
      keeps the final weights and the training stats; a finished run is loaded instead of retrained;
    * :meth:`cached` a JSON result (an evaluation) computed once per ``key``.
    """

    def __init__(self, name: str, spec: dict, root: str | Path = CKPT_ROOT):
        self.name = name
        self.key = params_hash({"spec": spec, "code": code_digest()})
        self.dir = ckpt_root(root) / f"{name}-{self.key}"
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / "spec.json", spec)

    @property
    def final(self) -> Path:
        return self.dir / "final.safetensors"

    @property
    def finished(self) -> bool:
        return self.final.exists() and (self.dir / "train.json").exists()

    def train(self, model, fn: Callable[[Path], dict], desc: str = "") -> dict:
        """Train ``model`` with ``fn(ckpt_dir) -> stats`` unless this run finished before (then load it)."""
        stats_path = self.dir / "train.json"
        if self.finished:
            load_weights(model, self.final)
            print(f"[{desc or self.name}] finished earlier: reusing {self.final}")
            return json.loads(stats_path.read_text())
        stats = fn(self.dir)
        save_weights(model, self.final)
        write_json(stats_path, stats)
        clear_train_state(self.dir)  # optimizer state: only needed to resume mid-run
        return stats

    def cached(self, name: str, spec: dict, fn: Callable[[], Any]):
        """``fn()`` stored as ``<name>-<hash of spec>.json`` in the run's folder and read back next time."""
        path = self.dir / f"{name}-{params_hash(spec)}.json"
        if path.exists():
            return json.loads(path.read_text())
        out = fn()
        write_json(path, out)
        return out
