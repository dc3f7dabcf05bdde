"""Small I/O helpers shared by the stages: atomic writes, params hashes, threads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def write_json(path: str | Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a temp sibling renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
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


def fresh_tmp_dir(out: str | Path) -> Path:
    """An empty ``<out>.tmp`` sibling directory to build ``out`` in (see :func:`replace_dir`)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def replace_dir(tmp: str | Path, out: str | Path) -> None:
    """Move the finished directory ``tmp`` over ``out`` (the last step of an atomic directory write).

    An existing ``out`` is renamed aside first and deleted only once the new one is in place, so a
    reader (or a crash) never sees a half-written directory.
    """
    tmp, out = Path(tmp), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, aside / out.name)
        os.rename(tmp, out)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(tmp, out)


def setup_threads(threads: int | None = None) -> None:
    """Torch intra-op threads: ``threads``, or every core when ``None``; ``OMP_NUM_THREADS`` wins if set."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(threads or os.cpu_count() or 1)
