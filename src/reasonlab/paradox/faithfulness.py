"""How faithful the oracle's outputs are to the drafts they rewrite (issue 23, item 3).

A refined trace should keep the draft's correct steps and their order and be written in the oracle's dialect; a
style-aligned one should also keep the draft's dialect; a synthesized one owes the draft nothing (it is the
oracle's own derivation, in its own order). Measured per mode on the outputs that verified, against the draft
each rewrote (the family's chosen SLM-RFT trace):

* ``kendall_tau``: rank correlation of the order in which the output and the draft compute the derived
  quantities they both compute (1: same order, -1: reversed; a pair of outputs with fewer than two common
  quantities has none), and ``same_order_share``, the share with exactly the draft's order;
* ``token_edit_distance``: word-level Levenshtein distance between output and draft, over the draft's length;
* ``dialects``: the share of outputs written wholly in each dialect (``mixed`` when not one), and
  ``draft_dialect_share``, the share written in the draft's own dialect;
* ``refined_differs_share``: on the problems where both verified, the share where the refined trace differs from
  the synthesized one (when they are always equal, refinement is only synthesis and the paradox's two oracle sets
  are one).

Written here rather than taken from a library: Kendall's tau of two orders of at most seven distinct items and a
word-level edit distance are a few lines each, and scipy is not otherwise a dependency.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping

import numpy as np

from ..world.problems import Problem
from .oracle import text_dialect, uniform_dialect, written_positions


def step_order(problem: Problem, text: str) -> list[str]:
    """The derived quantities ``text`` computes, in the order it first computes each (right or wrong)."""
    pos = written_positions(problem, text)
    return sorted(pos, key=pos.get)


def kendall_tau(a: list[str], b: list[str]) -> float | None:
    """Kendall's tau between two orders over the items both contain (``None`` if fewer than two)."""
    in_b = set(b)
    common = [x for x in a if x in in_b]
    if len(common) < 2:
        return None
    rank_b = {x: i for i, x in enumerate(b)}
    r = [rank_b[x] for x in common]  # ``common`` is in a's order
    n = len(r)
    s = sum(np.sign(r[j] - r[i]) for i in range(n) for j in range(i + 1, n))
    return float(s) / (n * (n - 1) / 2)


def token_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the whitespace tokens of ``a`` and ``b``."""
    x, y = a.split(), b.split()
    prev = list(range(len(y) + 1))
    for i, tx in enumerate(x, start=1):
        cur = [i]
        for j, ty in enumerate(y, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (tx != ty)))
        prev = cur
    return prev[-1]


def mode_faithfulness(problems: Mapping[str, Problem], outputs: Mapping[str, str],
                      drafts: Mapping[str, str]) -> dict:
    """Faithfulness of one mode's verified ``outputs`` (pid -> text) to their ``drafts`` (pid -> text)."""
    taus, same, dist, dial, in_draft = [], [], [], Counter(), []
    for pid, out in outputs.items():
        p, d = problems[pid], drafts[pid]
        do, oo = step_order(p, d), step_order(p, out)
        t = kendall_tau(oo, do)
        if t is not None:
            taus.append(t)
            same.append(t == 1.0)  # tau is 1 exactly when every common pair keeps the draft's order
        dist.append(token_edit_distance(out, d) / max(1, len(d.split())))
        ud = uniform_dialect(p, out) or "mixed"
        dial[ud] += 1
        in_draft.append(ud == text_dialect(p, d))
    n = len(outputs)

    def mean(v):
        return float(np.mean(v)) if v else None

    return {"n": n, "kendall_tau": mean(taus), "n_tau": len(taus), "same_order_share": mean(same),
            "token_edit_distance": mean(dist), "dialects": {k: v / n for k, v in sorted(dial.items())},
            "draft_dialect_share": mean(in_draft)}


def faithfulness(problems: Mapping[str, Problem], outputs: Mapping[str, Mapping[str, str]],
                 drafts: Mapping[str, str]) -> dict:
    """:func:`mode_faithfulness` of every mode in ``outputs`` (mode -> pid -> text), and ``refined_differs_share``
    (``None`` when no problem has both a refined and a synthesized output)."""
    r = {m: mode_faithfulness(problems, outs, drafts) for m, outs in outputs.items()}
    both = [pid for pid in outputs.get("refine", {}) if pid in outputs.get("synth", {})]
    r["refined_differs_share"] = (float(np.mean([outputs["refine"][p] != outputs["synth"][p] for p in both]))
                                  if both else None)
    r["n_refined_and_synth"] = len(both)
    return r


__all__ = ["faithfulness", "kendall_tau", "mode_faithfulness", "step_order", "token_edit_distance"]
