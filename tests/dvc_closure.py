"""The package modules a stage script imports, directly or transitively (read from the source, not run)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "reasonlab"


def _module_file(src: Path, name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    p = src.joinpath(*parts)
    if (p / "__init__.py").exists():
        return p / "__init__.py"
    if p.with_suffix(".py").exists():
        return p.with_suffix(".py")
    return None


def _imports(src: Path, f: Path) -> set[str]:
    try:
        rel = f.relative_to(src).with_suffix("").parts
        pkg = rel[:-1] if f.name != "__init__.py" else rel[:-1]
    except ValueError:  # a stage script outside the package
        pkg = ()
    out: set[str] = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(pkg[: len(pkg) - node.level + 1]) if node.level else ""
            mod = ".".join(x for x in (base, node.module or "") if x)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def import_closure(script: Path, src: Path) -> set[Path]:
    """Every file of ``src/reasonlab`` that running ``script`` may import (``__init__`` files included)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for name in _imports(src, f):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                mf = _module_file(src, ".".join(parts[:i]))
                if mf is not None and mf not in seen:
                    todo.append(mf)
    seen.discard(script)
    return seen
