"""Every metric value of two runs, compared leaf by leaf (a run: a clone's folder with ``metrics/``).

Keys that name times or speeds (``s``, ``wall``, ``time``, ``*_s``, ``tokens_per_s``, ``mfu``, ``peak``) are skipped.
Prints each file as ``identical`` or the paths that differ, then the count; exits 1 if anything differs.

    python benchmarks/diff_metrics.py /tmp/clone_a /tmp/clone_b
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

TIMES = ("wall", "time", "_s", "tokens_per_s", "mfu", "peak")


def skipped(key: str) -> bool:
    return key == "s" or (any(s in key for s in TIMES) and not key.endswith("_sd"))


def diff(x, y, path: str) -> list[tuple[str, str]]:
    """The leaves where ``x`` and ``y`` differ (NaN equals NaN)."""
    if isinstance(x, dict) and isinstance(y, dict):
        out = []
        for k in sorted(set(x) | set(y), key=str):
            if skipped(str(k)):
                continue
            if k not in x or k not in y:
                out.append((f"{path}/{k}", "only in " + ("b" if k not in x else "a")))
            else:
                out += diff(x[k], y[k], f"{path}/{k}")
        return out
    if isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            return [(path, f"length {len(x)} vs {len(y)}")]
        return [d for i, (u, v) in enumerate(zip(x, y)) for d in diff(u, v, f"{path}[{i}]")]
    same = x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
    return [] if same else [(path, f"{x!r} vs {y!r}")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    total = 0
    for f in sorted((args.a / "metrics").rglob("*.json")):
        rel = f.relative_to(args.a)
        g = args.b / rel
        if not g.exists():
            print(f"{rel}: only in a")
            total += 1
            continue
        d = diff(json.loads(f.read_text()), json.loads(g.read_text()), "")
        total += len(d)
        print(f"{rel}: " + ("identical" if not d else f"{len(d)} differ"))
        for path, what in d[:8]:
            print(f"    {path}: {what}")
    print(f"differing values: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
