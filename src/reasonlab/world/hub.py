"""The paper world: hub data sets and answer checking (``profile=paper``).

Cannot run here (no hub); the tests run it end to end on local stand-ins of the same shape
(``tests/standins.py``: data sets with the hub columns, tiny models under hub names).

* training pool: NuminaMath-CoT (``problem``, ``solution``)
* tiers: GSM8K (easy), MATH-500 (medium), AIME 2024 (hard)
* general corpus: WikiText
* answers: ``\\boxed{...}`` / GSM8K ``#### n`` extraction, equivalence by ``math-verify``
  (``pip install .[paper]``) with an exact-string fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, load_dataset

from ..schema import TIERS


@dataclass(frozen=True)
class MathVerdict:
    """The verdict on a free-form solution: its final answer and whether it is equivalent to the gold one.

    Same interface as the tiny world's :class:`~reasonlab.world.verifier.Verdict`; there is no step
    checker for free-form math, so ``step_validity`` is NaN, no information atom is known, and a
    solution is *verified* (``all_valid``) when its answer is correct.
    """

    answer: str | None
    correct: bool
    step_validity: float = float("nan")
    dialect: str | None = None
    atoms: frozenset = frozenset()

    @property
    def has_answer(self) -> bool:
        return self.answer is not None

    @property
    def all_valid(self) -> bool:
        return self.correct


def gold_answer(raw: str) -> str:
    """GSM8K's ``... #### 42`` -> ``42``; other sets give the answer as is."""
    raw = str(raw)
    return raw.split("####")[-1].strip().replace(",", "") if "####" in raw else raw.strip()


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), else the GSM8K ``#### n`` form."""
    i = text.rfind("\\boxed")
    if i >= 0:
        j = text.find("{", i)
        if j >= 0:
            depth, k = 0, j
            while k < len(text):
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                if depth == 0:
                    return text[j + 1 : k].strip()
                k += 1
    m = re.findall(r"####\s*([^\n]+)", text)
    return m[-1].strip() if m else None


def answers_match(pred: str | None, gold: str) -> bool:
    if pred is None:
        return False
    try:
        from math_verify import parse, verify

        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    except ImportError:
        norm = lambda s: re.sub(r"\s+|\\!|\\,|\$", "", s)  # noqa: E731
        return norm(pred) == norm(gold)


def check_math(gold: str, text: str) -> MathVerdict:
    pred = extract_boxed(text)
    return MathVerdict(pred, answers_match(pred, gold))


def _load(spec: dict, seed: int):
    kw = {k: spec[k] for k in ("name",) if k in spec}
    ds = load_dataset(spec["path"], split=spec["split"], **kw)
    if spec.get("limit"):
        ds = ds.shuffle(seed=seed).select(range(min(int(spec["limit"]), len(ds))))
    return ds


def _rows(ds, spec: dict, template: str, prefix: str) -> dict[str, list]:
    for key in ("question",):
        if spec[key] not in ds.column_names:
            raise ValueError(f"world.hub: column {spec[key]!r} not in {spec['path']} (columns: {ds.column_names})")
    q = ds[spec["question"]]
    cols = {"pid": [f"{prefix}{i:06d}" for i in range(len(q))], "text": list(q),
            "prompt": [template.format(question=x) for x in q]}
    if "answer" in spec:
        cols["answer"] = [gold_answer(a) for a in ds[spec["answer"]]]
    if "solution" in spec:
        cols["sol_reference"] = list(ds[spec["solution"]])
        cols["answer"] = [extract_boxed(s) or "" for s in cols["sol_reference"]]
    return cols


def build_world_from_hub(hub: dict, seed: int, out: Path, loader=_load) -> dict:
    """Materialise the paper world under ``out`` in the same layout as the tiny world."""
    template = hub.get("prompt_template", "{question}")
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for split, spec in (("train", hub["train"]), *((f"test_{t}", hub[t]) for t in TIERS)):
        rows = _rows(loader(spec, seed), spec, template, split[5] if split.startswith("test") else "t")
        Dataset.from_dict(rows).save_to_disk(str(out / split))
        summary[split] = len(rows["pid"])
        if split == "train":  # hub models were pretrained elsewhere: the training data is the held-out pool
            Dataset.from_dict(rows).save_to_disk(str(out / "heldout"))
            summary["heldout"] = len(rows["pid"])
    g = hub["general"]
    gen = loader(g, seed)
    texts = [t for t in gen[g["text"]] if t.strip()]
    Dataset.from_dict({"text": texts}).save_to_disk(str(out / "general"))
    summary["general"] = len(texts)
    return summary
