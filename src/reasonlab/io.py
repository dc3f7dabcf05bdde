"""Small I/O helpers shared by the stages: atomic writes, params hashes, environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path


def write_json(path: str | Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")
    os.replace(tmp, path)


def read_json(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing input file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def params_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def replace_dir(tmp: Path, out: Path) -> None:
    """Move a finished temp directory over ``out`` (the last step of an atomic directory write)."""
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def fresh_tmp_dir(out: str | Path) -> Path:
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def setup_threads() -> None:
    """Use every core for intra-op parallelism (2 here), unless the user set OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)


def ckpt_root(path: str | Path = ".ckpt") -> Path:
    """The checkpoint folder (outside DVC outs), created with a ``.gitignore`` so nothing in it reaches git."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return root
