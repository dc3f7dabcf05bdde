"""The oracle: a strong model prompted in three modes, its training data and a verified runner.

Modes (:data:`~reasonlab.paradox.config.MODES`):

* ``synth``   a correct solution in the oracle's own manner
* ``refine``  the draft repaired with minimal intervention, written in the oracle's own manner; the
  draft's valid steps keep their content (operands, their order, result)
* ``style``   the draft repaired while keeping the draft's own dialect (Style-Aligned Refinement): its
  valid steps stay verbatim, the others are rewritten correctly in the same dialect

Both repairs keep the draft's step order (:func:`repair_order`); synth follows the oracle's order habit.

Prompts: the tiny world's trained oracle reads :data:`TINY_PROMPTS` (mode tokens); a chat model (the
paper profile's oracle) reads the profile's ``paradox.templates`` through its chat template
(:func:`chat_prompt`). Which one an oracle gets follows from its tokenizer: a chat template means a
chat model.

The tiny oracle learns the modes from world-generated drafts with realistic mistakes
(:mod:`reasonlab.paradox.drafts`); its targets are :func:`oracle_target`.

:func:`oracle_run` generates, checks every output (:func:`check_output`: the item's verdict must be
``all_valid``; in style mode, where the world can tell, the whole output must be in the draft's
dialect), retries the failures with a new seed up to ``max_retries`` times and reports what still
failed; nothing unverified is ever kept. Any generator can stand in for the model through
``proposer`` (e.g. :func:`expert_oracle`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from ..generate import Sample, SamplingConfig, generate
from ..models.data import sft_example
from ..models.batching import Example
from ..rejection import pid_rng
from ..world.dialects import DIALECT_HABIT, DIALECTS, PARSE_ORDER, SMALL_DIALECTS, render_solution, render_steps
from ..world.problems import Problem, Quantity, derived_inputs, habit_order, order_by
from ..world.tasks import Item
from ..world.verifier import check_step, split_sentences, verify
from .config import MODES
from .drafts import DEFAULT_KIND_WEIGHTS, Step, sample_draft, tokenizer_max_number

ORACLE_DIALECT = "oracle"
TINY_PROMPTS = {
    "synth": "<bos> <synth> {problem} <sol>",
    "refine": "<bos> <refine> {problem} <draft> {draft} <sol>",
    "style": "<bos> <style> {problem} <draft> {draft} <sol>",
}


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _fields(mode: str, problem: str, draft: str | None) -> dict[str, str]:
    _check_mode(mode)
    if mode == "synth":
        if draft is not None:
            raise ValueError("draft: synth mode takes no draft")
        return {"problem": problem}
    if draft is None:
        raise ValueError(f"draft: {mode} mode needs a draft")
    return {"problem": problem, "draft": draft}


# --------------------------------------------------------------------------- prompts


def oracle_prompt(mode: str, problem_text: str, draft: str | None = None) -> str:
    """The tiny-world prompt of ``mode`` (:data:`TINY_PROMPTS`)."""
    return TINY_PROMPTS[mode].format(**_fields(mode, problem_text, draft))


def chat_messages(mode: str, problem: str, draft: str | None, templates: Mapping[str, str],
                  system: str | None = None) -> list[dict]:
    """Chat messages (``[{"role", "content"}]``) of ``mode``'s prompt from ``templates``
    (``paradox.templates``: format strings with ``{problem}`` and, for refine/style, ``{draft}``)."""
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": templates[mode].format(**_fields(mode, problem, draft))})
    return msgs


def chat_prompt(tokenizer, mode: str, problem: str, draft: str | None, templates: Mapping[str, str],
                system: str | None = None) -> str:
    """The chat prompt string (``tokenizer.apply_chat_template``, generation prompt added)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("tokenizer: has no chat template (use chat_messages for a model without one)")
    return tokenizer.apply_chat_template(chat_messages(mode, problem, draft, templates, system), tokenize=False,
                                         add_generation_prompt=True)


# --------------------------------------------------------------------------- targets


def text_dialect(problem: Problem, text: str) -> str | None:
    """The dialect of ``text``: that of most of its steps, else that of its answer sentence."""
    d = verify(problem, text).dialect
    if d is not None:
        return d
    for sent in reversed(split_sentences(text)):
        for name in PARSE_ORDER:
            if DIALECTS[name].answer_re.match(sent):
                return name
    return None


def uniform_dialect(problem: Problem, text: str) -> str | None:
    """The dialect every sentence of ``text`` (steps and answer) is written in; ``None`` if mixed or unparsable."""
    seen = set()
    for pos, sent in enumerate(split_sentences(text), start=1):
        c = check_step(problem, sent, pos)
        if c is None:
            seen.update(n for n in PARSE_ORDER if DIALECTS[n].answer_re.match(sent))
        else:
            seen.add(c.dialect)
    return seen.pop() if len(seen) == 1 and None not in seen else None


def _step_checks(problem: Problem, text: str):
    """``(position, sentence, check)`` of every step sentence of ``text`` (answer sentences skipped)."""
    pos = 0
    for sent in split_sentences(text):
        c = check_step(problem, sent, pos + 1)
        if c is not None:
            pos += 1
            yield pos, sent, c


def valid_content(problem: Problem, text: str) -> dict[str, tuple[int, str, int, int]]:
    """``name -> (a, op, b, r)`` of the valid steps of ``text`` (their content, as written)."""
    out: dict[str, tuple[int, str, int, int]] = {}
    for _, sent, c in _step_checks(problem, text):
        if c.valid and c.name not in out:
            g = DIALECTS[c.dialect].step_re.match(sent).groupdict()
            out[c.name] = (int(g["a"]), g["op"], int(g["b"]), int(g["r"]))
    return out


def written_positions(problem: Problem, draft: str) -> dict[str, int]:
    """``name -> position`` of the first step of ``draft`` that names each needed derived quantity (right or wrong)."""
    needed = {q.name for q in problem.derived}
    out: dict[str, int] = {}
    for pos, _, c in _step_checks(problem, draft):
        if c.name in needed and c.name not in out:
            out[c.name] = pos
    return out


def repair_order(problem: Problem, draft: str, habit: str = "canonical") -> list[Quantity]:
    """The step order of a minimal repair of ``draft``: the quantities the draft writes keep its order, a missing
    one comes just before its first written consumer (at the end if none is written), inputs always before their
    consumers; remaining ties follow ``habit``. A valid draft's own order is kept exactly."""
    written = written_positions(problem, draft)
    rank = {q.name: i for i, q in enumerate(habit_order(problem, habit))}
    inputs = derived_inputs(problem)
    users: dict[str, list[str]] = {q.name: [] for q in problem.derived}
    for q in problem.derived:
        for a in inputs[q.name]:
            users[a].append(q.name)
    anchor: dict[str, float] = {}
    for q in reversed(problem.derived):  # a quantity's users come after it in canonical order
        anchor[q.name] = written.get(q.name, min((anchor[u] for u in users[q.name]), default=float("inf")))
    return order_by(problem, lambda q: (anchor[q.name], q.name in written, rank[q.name]))


def repaired_steps(problem: Problem, draft: str, habit: str = "canonical") -> list[Step]:
    """Minimal repair: every needed derived quantity computed correctly, reusing the draft's valid steps as
    written, in :func:`repair_order` (ties by ``habit``)."""
    kept = valid_content(problem, draft)
    vals = problem.values
    steps = []
    for q in repair_order(problem, draft, habit):
        a, op, b, r = kept.get(q.name) or (*q.operands(vals), q.value)
        steps.append((q, a, op, b, r))
    return steps


def oracle_target(mode: str, problem: Problem, draft: str | None = None, draft_dialect: str | None = None) -> str:
    """What the oracle should write in ``mode`` (the training target; also the :func:`expert_oracle`).

    ``draft_dialect`` (style mode) defaults to :func:`text_dialect` of the draft.
    """
    _check_mode(mode)
    if mode == "synth":
        return render_solution(problem, ORACLE_DIALECT)
    if draft is None:
        raise ValueError(f"draft: {mode} mode needs a draft")
    if mode == "refine":
        d = ORACLE_DIALECT
    else:
        d = draft_dialect or text_dialect(problem, draft)
        if d is None:
            raise ValueError(f"draft: cannot tell the dialect of the draft of {problem.pid} ({draft[:60]!r}); "
                             "pass draft_dialect")
    return render_steps(problem, d, repaired_steps(problem, draft, DIALECT_HABIT[d]), problem.answer)


def mode_training_records(problems: Sequence[Problem], seed: int, *, modes: Sequence[str] = MODES,
                          drafts_per_problem: int = 1, kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                          dialects: Sequence[str] = SMALL_DIALECTS, max_value: int,
                          const_range: tuple[int, int] = (1, 9)) -> list[dict]:
    """Oracle training data as records (``pid, mode, prompt, target, kind, dialect``).

    One synth record per problem, ``drafts_per_problem`` records per problem for each draft mode
    (refine and style draw their drafts independently), deterministic under ``seed``.
    """
    for m in modes:
        _check_mode(m)
    if drafts_per_problem < 1:
        raise ValueError(f"drafts_per_problem must be >= 1, got {drafts_per_problem}")
    recs = []
    for p in problems:
        for m in modes:
            if m == "synth":
                recs.append({"pid": p.pid, "mode": m, "prompt": oracle_prompt(m, p.text), "target": oracle_target(m, p),
                             "kind": None, "dialect": ORACLE_DIALECT})
                continue
            for k in range(drafts_per_problem):
                rng = pid_rng(seed, p.pid, f"draft-{m}-{k}")
                d = sample_draft(p, rng, kind_weights, dialects, max_value=max_value, const_range=const_range)
                recs.append({"pid": p.pid, "mode": m, "prompt": oracle_prompt(m, p.text, d.text),
                             "target": oracle_target(m, p, d.text, d.dialect), "kind": d.kind, "dialect": d.dialect,
                             "draft": d.text})
    return recs


def mode_training_examples(problems: Sequence[Problem], tok, seed: int, **kw) -> list[Example]:
    """:func:`mode_training_records` as training examples (loss on the target); numbers are capped at
    the largest number token of ``tok`` unless ``max_value`` is given."""
    kw.setdefault("max_value", tokenizer_max_number(tok))
    return [sft_example(tok, r["prompt"], r["target"]) for r in mode_training_records(problems, seed, **kw)]


# --------------------------------------------------------------------------- running the oracle

Proposer = Callable[[str, list[Item], list[str | None], int], list]
"""``(mode, items, drafts, attempt) -> outputs`` (``str`` or :class:`~reasonlab.generate.Sample` each)."""

FAIL_REASONS = ("invalid", "dialect_mismatch", "unfinished", "draft_dialect_unknown")


def expert_oracle(mode: str, items: list[Item], drafts: list[str | None], attempt: int) -> list[str]:
    """A :data:`Proposer` that writes the exact targets (:func:`oracle_target`): the world's solver as the oracle, the
    tiny world's stand-in for a frontier model (``paradox.oracle_run.proposer: expert``), and a test double."""
    return [oracle_target(mode, it.problem, d) for it, d in zip(items, drafts)]


def model_proposer(model, tok, *, seed: int, temperature: float = 0.0, retry_temperature: float = 0.8,
                   top_p: float = 1.0, max_new_tokens: int = 160, batch_size: int = 64,
                   templates: Mapping[str, str] | None = None, system: str | None = None) -> Proposer:
    """A :data:`Proposer` that prompts ``model``: through its chat template with ``templates`` when its
    tokenizer has one (a chat model), else with :data:`TINY_PROMPTS`. Attempt ``k`` samples with seed
    ``seed + k`` (retries at ``max(temperature, retry_temperature)``, so a greedy first try is followed
    by sampled ones)."""
    chat = getattr(tok, "chat_template", None) is not None
    if chat and templates is None:
        raise ValueError("model_proposer: a chat oracle needs the prompt templates (paradox.templates)")

    def prompt(mode: str, it: Item, draft: str | None) -> str:
        if chat:
            return chat_prompt(tok, mode, it.text, draft, templates, system)
        return oracle_prompt(mode, it.text, draft)

    def propose(mode, items, drafts, attempt):
        prompts = [prompt(mode, it, d) for it, d in zip(items, drafts)]
        t = temperature if attempt == 0 else max(temperature, retry_temperature)
        cfg = SamplingConfig(n=1, temperature=t, top_p=top_p, max_new_tokens=max_new_tokens,
                             seed=seed + attempt, batch_size=batch_size)
        return [r[0] for r in generate(model, tok, prompts, cfg, desc=f"oracle {mode} #{attempt}")]

    return propose


def draft_dialect(item: Item, draft: str) -> str | None:
    """The dialect a style-aligned repair of ``draft`` must keep (``None`` where it cannot be told)."""
    return text_dialect(item.problem, draft) if item.problem is not None else None


def check_output(mode: str, item: Item, text: str, dialect: str | None = None, finished: bool = True) -> str | None:
    """Why an oracle output is rejected (one of :data:`FAIL_REASONS`), ``None`` if it is verified.

    Verified: finished, and the item's verdict is ``all_valid`` (tiny world: right answer, every
    step valid, every quantity stated; paper world: the answer is equivalent to the gold one). In
    style mode the tiny world also checks that every sentence is in the draft's ``dialect``; the
    paper world has no dialect parser, so there a style output is checked like a refined one.
    """
    if not finished:
        return "unfinished"
    if not item.check(text).all_valid:
        return "invalid"
    if mode == "style" and item.problem is not None and uniform_dialect(item.problem, text) != dialect:
        return "dialect_mismatch"
    return None


@dataclass
class OracleResult:
    """Verified outputs of one mode: ``outputs[pid]`` (kept, in input order), ``failed[pid]`` (the last
    attempt's :data:`FAIL_REASONS`), ``attempts[pid]`` (attempts used) and ``stats``."""

    mode: str
    outputs: dict[str, str]
    failed: dict[str, str]
    attempts: dict[str, int]
    stats: dict = field(default_factory=dict)


def oracle_run(proposer: Proposer, mode: str, items: Sequence[Item], drafts: Sequence[str | None] | None = None, *,
               max_retries: int = 2) -> OracleResult:
    """Run the oracle (``proposer``) in ``mode`` on ``items`` (and ``drafts``, one per item, for refine/style).

    Every output is checked (:func:`check_output`); failures are retried (new seed) up to
    ``max_retries`` times; those still failing are counted in ``stats['failed_by_reason']`` and listed
    in ``failed``, never kept.

    ``stats``: ``mode, n, kept, failed, failed_by_reason, pass_rate`` (kept / n),
    ``first_try_pass_rate``, ``attempts`` (total generations), ``dialects`` (of the kept outputs), ``wall_s``.
    """
    _check_mode(mode)
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    items = list(items)
    pids = [p.pid for p in items]
    if len(set(pids)) != len(pids):
        raise ValueError(f"problems: duplicate pids {[k for k, c in Counter(pids).items() if c > 1][:5]}")
    if mode == "synth":
        if drafts is not None and any(d is not None for d in drafts):
            raise ValueError("drafts: synth mode takes no drafts")
        drafts = [None] * len(items)
    else:
        if drafts is None or len(drafts) != len(items):
            raise ValueError(f"drafts: {mode} mode needs one draft per problem ({len(items)}), "
                             f"got {None if drafts is None else len(drafts)}")
        if any(not isinstance(d, str) for d in drafts):
            raise ValueError(f"drafts: {mode} mode needs a string draft for every problem")
        drafts = list(drafts)
    dialects = [draft_dialect(it, d) if mode == "style" else None for it, d in zip(items, drafts)]

    t0 = time.perf_counter()
    kept: dict[int, str] = {}
    reason: dict[int, str] = {}
    attempts = {p: 0 for p in pids}
    pending = []
    for i, it in enumerate(items):
        if mode == "style" and it.problem is not None and dialects[i] is None:
            reason[i] = "draft_dialect_unknown"  # cannot check style preservation: fail, do not guess
        else:
            pending.append(i)
    first_try = 0
    n_gen = 0
    for attempt in range(max_retries + 1):
        if not pending:
            break
        outs = proposer(mode, [items[i] for i in pending], [drafts[i] for i in pending], attempt)
        if len(outs) != len(pending):
            raise ValueError(f"proposer: returned {len(outs)} outputs for {len(pending)} prompts")
        n_gen += len(pending)
        still = []
        for i, o in zip(pending, outs):
            text, finished = (o.text, o.finished) if isinstance(o, Sample) else (str(o), True)
            attempts[pids[i]] = attempt + 1
            r = check_output(mode, items[i], text, dialects[i], finished)
            if r is None:
                kept[i] = text
                reason.pop(i, None)
            else:
                reason[i] = r
                still.append(i)
        if attempt == 0:
            first_try = len(kept)
        pending = still
    n = len(items)
    outputs = {pids[i]: kept[i] for i in sorted(kept)}
    failed = {pids[i]: reason[i] for i in sorted(reason)}
    stats = {
        "mode": mode,
        "n": n,
        "kept": len(outputs),
        "failed": len(failed),
        "failed_by_reason": {r: sum(v == r for v in failed.values()) for r in FAIL_REASONS},
        "pass_rate": len(outputs) / n if n else 0.0,
        "first_try_pass_rate": first_try / n if n else 0.0,
        "attempts": n_gen,
        "dialects": dict(Counter((uniform_dialect(items[i].problem, kept[i]) if items[i].problem else None) or "mixed"
                                 for i in sorted(kept))),
        "max_retries": max_retries,
        "wall_s": time.perf_counter() - t0,
    }
    return OracleResult(mode, outputs, failed, attempts, stats)


__all__ = [
    "FAIL_REASONS", "ORACLE_DIALECT", "OracleResult", "Proposer", "TINY_PROMPTS", "chat_messages", "chat_prompt",
    "check_output", "draft_dialect", "mode_training_examples", "mode_training_records", "model_proposer",
    "oracle_prompt", "oracle_run", "oracle_target", "expert_oracle", "repair_order", "repaired_steps", "text_dialect",
    "uniform_dialect", "valid_content", "written_positions",
]
