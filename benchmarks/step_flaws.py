"""Where a trained model's greedy solutions go wrong, step by step (a study, not a stage).

The capability probes (``benchmarks/capability.py``) say how often a model's steps are valid; this script says why
the others are not. It decodes validation problems greedily (never a test tier) and checks every step sentence with
the world's verifier: the share of steps by flaw (:data:`reasonlab.world.verifier.FLAWS`; a ``quantity`` flaw split
into a step that names no derived quantity of the problem and one that computes a derived quantity from the wrong
operands), the flaw of each trace's first invalid step, and where in the trace it comes (step 1, 2, ...), with answer
accuracy and the fully valid share per problem length.

    python benchmarks/step_flaws.py --model models/oracle --n 300 --out benchmarks/capability/flaws/oracle_6000.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from reasonlab.generate import SamplingConfig, generate
from reasonlab.io import setup_threads
from reasonlab.models.zoo import load_lm
from reasonlab.world.dialects import DIALECTS
from reasonlab.world.tasks import open_task

ROOT = Path(__file__).resolve().parents[1]


def step_kind(problem, step) -> str:
    """The flaw of one checked step, with ``quantity`` split by what went wrong (``valid`` for a valid step)."""
    if step.flaw != "quantity":
        return step.flaw or "valid"
    derived = {q.name for q in problem.quantities if q.op != "given"}
    return "quantity:operands" if step.name in derived else "quantity:not_derived"


def operand_error(problem, step) -> str:
    """What a step with wrong operands got wrong against the named quantity's true ``a op b``: the operation, the
    value it took for the quantity it builds on (``input``), the problem's constant (``constant``; ``borrowed`` when
    the number it used is another statement's constant), or several of these."""
    g = DIALECTS[step.dialect].step_re.match(step.text).groupdict()
    a, op, b = int(g["a"]), g["op"], int(g["b"])
    q = next(q for q in problem.quantities if q.name == step.name)
    ta, top, tb = q.operands(problem.values)
    if op != top:
        return "operation"
    if op in "+*" and (a == tb) + (b == ta) > (a == ta) + (b == tb):
        a, b = b, a  # the verifier accepts a sum or product in either order: read it in the orientation it matches
    if q.op == "together":
        return "input"  # both operands are quantities' values; with both right the step would be valid
    if a == ta:
        others = {x.const for x in problem.quantities if x is not q and x.op not in ("given", "together")}
        return "constant (borrowed)" if b in others else "constant"
    return "input" if b == tb else "input and constant"


def analyse(items, texts: list[str]) -> dict:
    """Flaw statistics of ``texts[i]``, the solution of ``items[i]``."""
    all_steps: Counter = Counter()
    first: Counter = Counter()
    first_pos: Counter = Counter()
    first_operands: Counter = Counter()
    by_len: dict[int, list] = {}
    verdicts = []
    for it, text in zip(items, texts):
        v = it.check(text)
        verdicts.append(v)
        kinds = [step_kind(it.problem, s) for s in v.steps]
        all_steps.update(kinds)
        bad = next((i for i, k in enumerate(kinds) if k != "valid"), None)
        if bad is not None:
            first[kinds[bad]] += 1
            first_pos[bad + 1] += 1
            if kinds[bad] == "quantity:operands":
                first_operands[operand_error(it.problem, v.steps[bad])] += 1
        elif not v.all_valid:
            first["missing_or_unfinished"] += 1
        by_len.setdefault(it.problem.steps, []).append((v.correct, v.all_valid))
    n_steps = sum(all_steps.values())
    return {
        "n": len(texts),
        "acc": float(np.mean([v.correct for v in verdicts])),
        "all_valid": float(np.mean([v.all_valid for v in verdicts])),
        "step_share": {k: c / n_steps for k, c in all_steps.most_common()},
        "first_flaw": dict(first.most_common()),
        "first_flaw_position": dict(sorted(first_pos.items())),
        "first_operand_error": dict(first_operands.most_common()),
        "by_steps": {str(k): {"n": len(r), "acc": float(np.mean([c for c, _ in r])),
                              "all_valid": float(np.mean([a for _, a in r]))} for k, r in sorted(by_len.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a saved model directory")
    ap.add_argument("--world", default=str(ROOT / "data" / "world"))
    ap.add_argument("--n", type=int, default=300, help="validation problems")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    setup_threads()
    items = open_task(a.world).split_items("validation", range(a.n))
    model, tok = load_lm(a.model)
    outs = generate(model, tok, [it.prompt for it in items], SamplingConfig(1, 0.0, 1.0, a.max_new_tokens, 0, 512),
                    desc="greedy")
    rec = {"model": a.model, "label": a.label, **analyse(items, [o[0].text for o in outs]),
           "examples": [{"pid": it.pid, "text": o[0].text} for it, o in list(zip(items, outs))[:5]]}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps({k: rec[k] for k in ("acc", "all_valid", "first_flaw", "first_flaw_position",
                                               "first_operand_error")}))


if __name__ == "__main__":
    main()
