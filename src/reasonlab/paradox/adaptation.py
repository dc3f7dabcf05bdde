"""Adaptation cost: what a training set's drift from the small model's own distribution costs, measured causally.

Paper A explains the paradox by distributional drift: the sets the small model learns least from are those its
base model finds least likely (perplexity), and the ranking holds in every quarter of the traces. That is a
correlation across five sets that differ in more than drift (logic, order, length, which problems survive). The
tiny world can change *only* the drift:

* :func:`drift_sets` renders the same valid derivations of the same problems (fixed logic) at several levels of
  the dialect-drift dial (:func:`~reasonlab.world.dialects.render_drift`: a share of the steps in another
  dialect's surface form), and optionally in another step order at the family's own dialect (the second axis);
  :func:`logic_check` verifies that every set states exactly the same information atoms;
* students trained on each set (:func:`~reasonlab.paradox.cohort.train_cohort`) give utility per level, and
  :func:`~reasonlab.stats.rank_trend` the rank correlation between measured drift (the base model's perplexity of
  the set) and utility, with an interval over problems and seeds; :func:`sweep_verdict` reads it;
* :func:`loss_attribution` says which kinds of token carry the base model's loss (words, numbers, notation), in
  the first quarter of the traces or overall: the paper finds words on native traces, notation on refined ones;
* :func:`quarter_ranking` checks that the sets' perplexity ranking is the same in every quarter.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np
from datasets import Dataset

from ..stats import paired_diff, rank_trend
from ..world.dialects import DIALECT_HABIT, render_drift
from ..world.tasks import Item
from .analysis import QUARTERS, quarter_index
from .variants import COLUMNS, FEATURES

TOKEN_CLASSES = ("word", "number", "notation", "special")


def token_class(token: str) -> str:
    """The kind of a token: ``number`` (digits), ``word`` (letters), ``special`` (``<...>``) or ``notation``
    (anything else: ``=``, ``;``, ``####``, ...); a hub tokenizer's leading-space mark is ignored."""
    if token.startswith("<") and token.endswith(">") and len(token) > 2:
        return "special"
    token = token.lstrip("\u0120\u2581 ") or token  # a BPE word's leading-space mark (hub tokenizers)
    if token.isdigit():
        return "number"
    if token.isalpha():
        return "word"
    return "notation"


def level_name(level: float) -> str:
    return f"drift_{level:.2f}"


def order_name(habit: str) -> str:
    return f"order_{habit}"


def drift_sets(items: Sequence[Item], dialect: str, levels: Sequence[float], seed: int, other: str = "oracle",
               order_axis: bool = True) -> dict[str, Dataset]:
    """The drift dial's training sets on ``items`` (tiny-world items with graphs), in :data:`COLUMNS`: per level
    ``s`` (:func:`level_name`) the correct solution in ``dialect`` and its habit's order with ``round(s * steps)``
    steps in ``other``'s surface form; with ``order_axis`` also the solution in ``dialect`` at drift 0 in
    ``other``'s step order (:func:`order_name`). Same problems, same logic: only the rendering differs."""
    if not items:
        raise ValueError("drift_sets: no problems")
    missing = [it.pid for it in items if it.problem is None]
    if missing:
        raise ValueError(f"drift_sets: the drift dial needs the world's graphs; items without one, e.g. {missing[:3]}")
    if sorted(set(levels)) != sorted(levels) or not all(0 <= s <= 1 for s in levels):
        raise ValueError(f"adaptation.levels: distinct values in [0, 1] expected, got {list(levels)}")
    texts: dict[str, list[str]] = {level_name(s): [render_drift(it.problem, dialect, s, seed, other) for it in items]
                                   for s in levels}
    if order_axis:
        habit = DIALECT_HABIT[other]
        texts[order_name(habit)] = [render_drift(it.problem, dialect, 0.0, seed, other, order=habit) for it in items]
    return {name: Dataset.from_dict({"pid": [it.pid for it in items], "prompt": [it.prompt for it in items],
                                     "solution": sols, "variant": [name] * len(items)}, features=FEATURES)
            for name, sols in texts.items()}


def logic_check(items: Sequence[Item], sets: Mapping[str, Dataset]) -> dict:
    """Per set: the share of traces that are fully valid derivations (``all_valid``) and the share that state
    exactly the problem's needed quantities (``same_atoms``: the information atoms, whatever the order). The
    drift dial is causal only where both are 1 for every set: then the sets differ in rendering alone."""
    by_pid = {it.pid: it for it in items}
    out = {}
    for name, ds in sets.items():
        vs = [(by_pid[p], by_pid[p].check(s)) for p, s in zip(ds["pid"], ds["solution"])]
        out[name] = {"n": len(vs), "all_valid": float(np.mean([v.all_valid for _, v in vs])),
                     "same_atoms": float(np.mean([set(v.atoms) == {q.name for q in it.problem.derived}
                                                  for it, v in vs]))}
    return out


def loss_attribution(traces: Sequence[tuple[Sequence[int], np.ndarray]], id_to_token: Mapping[int, str],
                     quarter: str | None = "Q1", top: int = 10) -> dict:
    """Which tokens carry the loss: per :data:`TOKEN_CLASSES` class the share of the summed NLL
    (``loss_share``), the share of the tokens (``token_share``) and the mean NLL (``mean_nll``), and the ``top``
    tokens by their share of the loss, over the positions of ``quarter`` (``Q1``-``Q4`` of each trace, as in
    :func:`~reasonlab.paradox.analysis.quarter_index`) or of the whole traces (``None``).

    ``traces``: per trace the target token ids and their NLL (:func:`~reasonlab.paradox.analysis.solution_token_nll_ids`).
    """
    if quarter is not None and quarter not in QUARTERS:
        raise ValueError(f"quarter must be one of {QUARTERS} or None, got {quarter!r}")
    loss: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for ids, nll in traces:
        ids, nll = np.asarray(ids), np.asarray(nll, dtype=float)
        if len(ids) != len(nll):
            raise ValueError(f"loss_attribution: {len(ids)} token ids for {len(nll)} NLL values")
        keep = np.ones(len(ids), bool) if quarter is None else quarter_index(len(ids)) == QUARTERS.index(quarter)
        for t, x in zip(ids[keep].tolist(), nll[keep].tolist()):
            tok = id_to_token.get(t, f"<id {t}>")
            loss[tok] += x
            count[tok] += 1
    total, n = sum(loss.values()), sum(count.values())
    if n == 0:
        raise ValueError("loss_attribution: no tokens")
    by_class = {}
    for c in TOKEN_CLASSES:
        toks = [t for t in loss if token_class(t) == c]
        lc, nc = sum(loss[t] for t in toks), sum(count[t] for t in toks)
        by_class[c] = {"loss_share": lc / total if total else float("nan"), "token_share": nc / n,
                       "mean_nll": lc / nc if nc else float("nan")}
    ranked = sorted(loss, key=lambda t: (-loss[t], t))[:top]
    return {"quarter": quarter, "n_tokens": n, "nll": total / n, "by_class": by_class,
            "top": [{"token": t, "class": token_class(t), "loss_share": loss[t] / total if total else float("nan"),
                     "count": count[t], "mean_nll": loss[t] / count[t]} for t in ranked]}


def quarter_ranking(ppl: Mapping[str, Mapping]) -> dict:
    """Does the sets' perplexity ranking hold in every quarter? ``ppl``: per set the output of
    :func:`~reasonlab.paradox.analysis.perplexity_from_nll`. Returns the global ranking (lowest perplexity first),
    the ranking in each quarter, ``same_in_every_quarter`` and, per quarter, Kendall-free agreement counted as the
    share of set pairs ordered as globally (``pair_agreement``)."""
    names = [n for n in ppl if ppl[n]["ppl"] == ppl[n]["ppl"]]
    rank = sorted(names, key=lambda n: (ppl[n]["ppl"], n))
    out = {"global": rank, "quarters": {}, "pair_agreement": {}}
    pairs = [(a, b) for i, a in enumerate(rank) for b in rank[i + 1:]]
    for q in QUARTERS:
        rq = sorted(names, key=lambda n: (ppl[n]["quarters"][q]["ppl"], n))
        out["quarters"][q] = rq
        pos = {n: i for i, n in enumerate(rq)}
        out["pair_agreement"][q] = (sum(pos[a] < pos[b] for a, b in pairs) / len(pairs)) if pairs else float("nan")
    out["same_in_every_quarter"] = all(out["quarters"][q] == rank for q in QUARTERS) if names else None
    return out


def sweep_verdict(x: Sequence[float], scores: Sequence[np.ndarray], ppl_diff: dict, *, n_boot: int = 2000,
                  seed: int = 0) -> dict:
    """The drift sweep's claim "utility falls as drift rises" on one utility.

    ``x``: the measured drift of each level's set (base-model perplexity), in dial order; ``scores``: per level a
    ``[seeds, problems]`` array of the students' per-problem utility (same problems and seeds at every level);
    ``ppl_diff``: the paired difference in per-trace log perplexity between the last and the first level
    (:func:`~reasonlab.stats.paired_diff`), the precondition that the dial moves the measured drift at all.

    Returns ``spearman`` (:func:`~reasonlab.stats.rank_trend` of utility against ``x``), ``last_minus_first`` (the
    paired utility difference between the most and the least drifted set) and ``verdict``: "not testable here"
    when the dial does not raise perplexity (its interval includes 0 or lies below it); "holds" when the rank
    correlation's interval lies below 0 and the most drifted set's students are worse than the least drifted
    ones' (interval below 0); "does not hold" otherwise. ``falsified_by`` says which result would have refuted it.
    """
    trend = rank_trend(x, scores, n_boot=n_boot, seed=seed)
    last_first = paired_diff(scores[-1], scores[0], n_boot=n_boot, seed=seed)
    moved = ppl_diff["ci95"][0] > 0
    if not moved:
        verdict = "not testable here"
        why = (f"the dial does not raise the base model's log perplexity: {ppl_diff['mean']:+.3f} "
               f"[{ppl_diff['ci95'][0]:+.3f}, {ppl_diff['ci95'][1]:+.3f}]")
    elif trend["ci95"][1] < 0 and last_first["ci95"][1] < 0:
        verdict, why = "holds", "rank correlation and last-minus-first difference both below 0"
    else:
        verdict = "does not hold"
        why = (f"rank correlation {trend['rho']:+.2f} [{trend['ci95'][0]:+.2f}, {trend['ci95'][1]:+.2f}], "
               f"last minus first {100 * last_first['mean']:+.1f} points "
               f"[{100 * last_first['ci95'][0]:+.1f}, {100 * last_first['ci95'][1]:+.1f}]")
    return {"spearman": trend, "last_minus_first": last_first, "ppl_moved": bool(moved), "verdict": verdict,
            "why": why, "falsified_by": "a rank correlation whose interval reaches 0 or above, or students of the "
                                        "most drifted set no worse than those of the least drifted one"}


__all__ = ["TOKEN_CLASSES", "drift_sets", "level_name", "logic_check", "loss_attribution", "order_name",
           "quarter_ranking", "sweep_verdict", "token_class"]
