"""The world-v3 regime table from ``capability.py`` records: one row per run (its last probe and, where the run ended
with ``--final-k``, the sampled evaluation), as Markdown.

    python benchmarks/capability_table.py benchmarks/capability/v3/*.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read(path: Path) -> dict:
    """Head, last probe, summary and final evaluation of one record."""
    out: dict = {"name": path.stem}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if "model" in r:
            out["head"] = r
        elif "step" in r:
            out["probe"] = r
        elif "summary" in r:
            out["summary"] = r["summary"]
        elif "final" in r:
            out["final"] = r["final"]
    return out


def world_of(head: dict) -> str:
    """The run's world and model overrides, short."""
    keep = [o.split("=", 1) for o in head["overrides"] if not o.startswith("++")]
    return " ".join(f"{k.split('.')[-1]}={v}" for k, v in keep)


def pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def row(r: dict) -> str | None:
    if "head" not in r or "probe" not in r:
        return None
    p, f = r["probe"], r.get("final", {})
    steps = "/".join(f"{100 * v:.0f}" for v in p["acc_by_steps"].values())
    t1 = [pct(f.get(t, {}).get("avg")) for t in ("easy", "medium", "hard", "validation")]
    wall = r.get("summary", {}).get("wall_s")
    return (f"| {r['name']} | {r['head']['model']} | {world_of(r['head'])} | {p['step']} | {pct(p['acc'])} | {steps} | "
            f"{pct(p['all_valid'])} | {' | '.join(t1)} | {pct(f.get('validation', {}).get('rft_valid'))} | "
            f"{'' if wall is None else round(wall)} |")


HEADER = ("| run | model | overrides | steps | greedy acc (val) | by steps 2/3/4/5 | fully valid (greedy) | "
          "T=1 Avg@16 easy | medium | hard | validation | rft_valid (val) | train wall s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", type=Path)
    a = ap.parse_args()
    print(HEADER)
    for path in a.records:
        line = row(read(path))
        if line:
            print(line)


if __name__ == "__main__":
    main()
