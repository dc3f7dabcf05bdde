"""The five training sets of the paradox, on exactly the same problem ids.

From the RFT result (the SLM-solvable problems and their chosen self-sampled traces):

* ``slm_rft``         the small model's own kept trace
* ``oracle_refined``  the oracle's refine of that trace (oracle dialect)
* ``oracle_synth``    the oracle's own solution (synth mode)
* ``reference``       the world's reference solution (tiny world: the textbook dialect; paper world:
  the data set's own solution, e.g. NuminaMath's CoT)
* ``style_aligned``   the oracle's style-aligned refine of that trace (the trace's own dialect)

Only problems for which every oracle mode produced a verified output are used; the others are
dropped and reported with the mode(s) and reason(s) that failed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from datasets import Dataset, Features, Value, load_from_disk

from ..models.data import sft_example
from ..models.batching import Example
from ..world.tasks import Item
from .config import MODE_OF_SET, MODES, SETS
from .oracle import OracleResult, check_output, draft_dialect
from .rejection import RejectionResult

COLUMNS = ("pid", "prompt", "solution", "variant")
FEATURES = Features({c: Value("string") for c in COLUMNS})

OracleCall = Callable[[str, list[Item], list[str] | None], OracleResult]
"""``oracle(mode, items, drafts) -> OracleResult``, e.g. ``functools.partial(oracle_run, proposer, max_retries=2)``."""


@dataclass
class VariantSets:
    """``sets[variant]`` (a :class:`datasets.Dataset` with columns :data:`COLUMNS`, rows in ``pids`` order)
    and ``report``: ``n_solvable, n_kept, n_dropped, dropped`` (pid -> {mode: reason}),
    ``dropped_by_mode`` (mode -> {reason: count}) and ``oracle`` (mode -> the oracle run's stats)."""

    sets: dict[str, Dataset]
    pids: list[str]
    report: dict = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    """mode -> pid -> every verified oracle output, also of problems dropped for another mode (not saved)."""


def build_variants(rft: RejectionResult, problems: Sequence[Item], oracle: OracleCall) -> VariantSets:
    """Build the five sets from ``rft`` (its problems must be among ``problems``) with ``oracle``.

    Oracle outputs are re-checked here (:func:`~reasonlab.paradox.oracle.check_output`), so a custom
    ``oracle`` that returned an unverified output only loses that problem (reason ``unverified``).
    """
    by_pid = {p.pid: p for p in problems}
    missing = [pid for pid in rft.traces if pid not in by_pid]
    if missing:
        raise ValueError(f"problems: {len(missing)} RFT pids are not among them, e.g. {missing[:3]}")
    solvable = list(rft.traces)
    probs = [by_pid[pid] for pid in solvable]
    drafts = [rft.traces[pid].text for pid in solvable]
    outputs: dict[str, dict[str, str]] = {}
    dropped: dict[str, dict[str, str]] = {}
    oracle_stats: dict[str, dict] = {}
    for mode in MODES:
        res = oracle(mode, probs, None if mode == "synth" else drafts)
        if not isinstance(res, OracleResult) or res.mode != mode:
            raise ValueError(f"oracle: expected an OracleResult of mode {mode!r}, got {res!r:.80}")
        oracle_stats[mode] = res.stats
        outputs[mode] = {}
        for p, d in zip(probs, drafts):
            out = res.outputs.get(p.pid)
            if out is None:
                dropped.setdefault(p.pid, {})[mode] = res.failed.get(p.pid, "missing")
                continue
            dd = draft_dialect(p, d) if mode == "style" else None
            if check_output(mode, p, out, dd) is not None:
                dropped.setdefault(p.pid, {})[mode] = "unverified"
                continue
            outputs[mode][p.pid] = out
    no_ref = [pid for pid in solvable if by_pid[pid].reference is None]
    if no_ref:
        raise ValueError(f"problems: {len(no_ref)} have no reference solution, e.g. {no_ref[:3]}")
    keep = [pid for pid in solvable if pid not in dropped]
    sols = {
        "slm_rft": {pid: rft.traces[pid].text for pid in keep},
        "reference": {pid: by_pid[pid].reference for pid in keep},
        **{v: outputs[m] for v, m in MODE_OF_SET.items()},
    }
    sets = {}
    for v in SETS:
        sets[v] = Dataset.from_dict({
            "pid": keep,
            "prompt": [by_pid[pid].prompt for pid in keep],
            "solution": [sols[v][pid] for pid in keep],
            "variant": [v] * len(keep),
        }, features=FEATURES)
    by_mode = {m: dict(Counter(r[m] for r in dropped.values() if m in r)) for m in MODES}
    report = {"n_solvable": len(solvable), "n_kept": len(keep), "n_dropped": len(dropped), "dropped": dropped,
              "dropped_by_mode": by_mode, "oracle": oracle_stats}
    vs = VariantSets(sets, keep, report, outputs)
    assert_same_ids(vs.sets)
    return vs


def assert_same_ids(sets: Mapping[str, Dataset]) -> list[str]:
    """Raise ``AssertionError`` naming the first set whose ``pid`` column (ids and order) differs from the
    first set's, or that has duplicate ids; returns the common ids."""
    if not sets:
        raise AssertionError("no sets")
    names = list(sets)
    ref = list(sets[names[0]]["pid"])
    if len(set(ref)) != len(ref):
        raise AssertionError(f"set {names[0]!r} has duplicate pids")
    for n in names[1:]:
        ids = list(sets[n]["pid"])
        if ids != ref:
            extra, lack = sorted(set(ids) - set(ref))[:3], sorted(set(ref) - set(ids))[:3]
            raise AssertionError(f"set {n!r} has different pids than {names[0]!r} "
                                 f"(extra {extra}, missing {lack}{', or another order' if not extra and not lack else ''})")
    return ref


def variant_examples(ds: Dataset, tok) -> list[Example]:
    """SFT examples (loss on the solution) of one variant set."""
    return [sft_example(tok, p, s) for p, s in zip(ds["prompt"], ds["solution"])]


def save_variants(vs: VariantSets, out: str | Path) -> None:
    """Each set to ``out/<variant>`` and the report to ``out/report.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for v, ds in vs.sets.items():
        ds.save_to_disk(str(out / v))
    (out / "report.json").write_text(json.dumps(vs.report, indent=2, default=str))


def _load_set(path: Path) -> Dataset:
    """``load_from_disk``, except that an empty set (saved without any data file) loads as an empty set."""
    state = path / "state.json"
    if state.exists() and not json.loads(state.read_text()).get("_data_files"):
        return Dataset.from_dict({c: [] for c in COLUMNS}, features=FEATURES)
    return load_from_disk(str(path))


def load_variants(out: str | Path) -> dict[str, Dataset]:
    """The sets saved by :func:`save_variants` (checked to share their ids)."""
    out = Path(out)
    sets = {}
    for v in SETS:
        if not (out / v).exists():
            raise FileNotFoundError(f"variant set not found: {out / v} (run the variants stage)")
        sets[v] = _load_set(out / v)
    assert_same_ids(sets)
    return sets


__all__ = ["COLUMNS", "OracleCall", "VariantSets", "assert_same_ids", "build_variants", "load_variants",
           "save_variants", "variant_examples"]
