"""A general-domain corpus: the world's vocabulary with no arithmetic (a WikiText analogue).

Used as a calibration domain that is *not* the reasoning domain.
"""

from __future__ import annotations

import random

from .problems import ITEMS, NAMES, _rng

COLORS = "red blue green yellow".split()
PLACES = "park shop school garden market".split()
CONTAINERS = "box bag jar basket".split()
TEMPLATES = (
    "{n1} likes {item} .",
    "{n1} gives some {item} to {n2} .",
    "{n1} and {n2} find {item} in the {place} .",
    "the {item} are {color} .",
    "{n1} keeps the {item} in a {container} .",
    "{n1} has many {item} .",
    "{n1} has more {item} than {n2} .",
    "{n1} walks to the {place} with {n2} .",
    "{n2} wants the {color} {item} .",
    "the {container} is in the {place} .",
)


def paragraph(rng: random.Random, n_sentences: int) -> str:
    out = []
    for _ in range(n_sentences):
        n1, n2 = rng.sample(NAMES, 2)
        out.append(
            rng.choice(TEMPLATES).format(
                n1=n1, n2=n2, item=rng.choice(ITEMS), place=rng.choice(PLACES),
                color=rng.choice(COLORS), container=rng.choice(CONTAINERS),
            )
        )
    return " ".join(out)


def general_corpus(seed: int, count: int, sentences: tuple[int, int] = (4, 10)) -> list[str]:
    rng = _rng(seed, "general")
    return [paragraph(rng, rng.randint(*sentences)) for _ in range(count)]
