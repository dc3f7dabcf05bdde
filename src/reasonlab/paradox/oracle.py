"""The oracle: a strong model prompted in three modes, its training data and a verified runner.

Modes (tiny-world prompt formats, :data:`TINY_PROMPTS`):

* ``synth``   ``<bos> <synth> {problem} <sol>``                 -> a correct solution in the oracle's dialect
* ``refine``  ``<bos> <refine> {problem} <draft> {draft} <sol>`` -> the draft repaired with minimal
  intervention, written in the oracle's own manner (oracle dialect); the draft's valid steps keep
  their content (operands, their order, result)
* ``style``   ``<bos> <style> {problem} <draft> {draft} <sol>``  -> the draft repaired while keeping the
  draft's own dialect (Style-Aligned Refinement): its valid steps stay verbatim, the others are
  rewritten correctly in the same dialect

The oracle learns the modes from world-generated drafts (:func:`make_draft`) with realistic mistakes
in any small-model dialect: an arithmetic slip whose wrong value propagates, a wrong operand or
constant (also propagated), a skipped step, a cut-off before the answer, and already-correct drafts.

:func:`oracle_run` generates, verifies every output (``verify(...).all_valid``; in style mode also
that the whole output is written in the draft's dialect), retries the unverified ones with a new
seed up to ``max_retries`` times and reports what still failed; nothing unverified is ever kept.
Any generator can stand in for the model through ``proposer`` (e.g. :func:`perfect_oracle`).

For the paper profile the prompts are chat templates (:data:`PAPER_TEMPLATES`, kept in params) made
into chat prompts by :func:`chat_messages` / :func:`chat_prompt`.
"""

from __future__ import annotations

import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..generate import Sample, SamplingConfig, generate
from ..models.data import sft_example
from ..models.train import Example
from ..world.dialects import DIALECTS, PARSE_ORDER, SMALL_DIALECTS, render_solution, render_steps
from ..world.problems import Problem, Quantity
from ..world.verifier import check_step, split_sentences, verify
from .rejection import pid_rng

MODES = ("synth", "refine", "style")
ORACLE_DIALECT = "oracle"
TINY_PROMPTS = {
    "synth": "<bos> <synth> {problem} <sol>",
    "refine": "<bos> <refine> {problem} <draft> {draft} <sol>",
    "style": "<bos> <style> {problem} <draft> {draft} <sol>",
}
MISTAKE_KINDS = ("arithmetic", "operand", "skip", "cutoff")
DRAFT_KINDS = MISTAKE_KINDS + ("correct",)
DEFAULT_KIND_WEIGHTS = {"correct": 0.2, "arithmetic": 0.25, "operand": 0.25, "skip": 0.15, "cutoff": 0.15}
SLIPS = (-10, -3, -2, -1, 1, 2, 3, 10)  # arithmetic slips: off by one..three, a carry error

# Paper profile: chat prompts for an instruction-tuned oracle (format strings; ``{{}}`` is a literal ``{}``).
PAPER_SYSTEM_PROMPT = "You are an expert mathematician and a careful, precise teacher."
PAPER_TEMPLATES = {
    "synth": (
        "Solve the following problem. Reason step by step, and put your final answer within \\boxed{{}}.\n\n"
        "Problem:\n{problem}"
    ),
    "refine": (
        "Below are a problem and a draft solution written by a student. Check every step of the draft, "
        "correct any error in its reasoning or calculations and add any missing step. Write the corrected "
        "solution in your own clear style, keeping the correct reasoning of the draft. Put your final answer "
        "within \\boxed{{}}.\n\nProblem:\n{problem}\n\nDraft solution:\n{draft}\n\nCorrected solution:"
    ),
    "style": (
        "Below are a problem and a draft solution written by a student. Correct any error in its reasoning or "
        "calculations and add any missing step, changing as little as possible: keep the draft's wording, "
        "sentence structure, notation, formatting and length wherever they are correct, so that the result "
        "reads as if the student had written it. Do not add explanations of your own. Put the final answer "
        "within \\boxed{{}}.\n\nProblem:\n{problem}\n\nDraft solution:\n{draft}\n\nRepaired solution:"
    ),
}
_FIELDS = {"synth": {"problem"}, "refine": {"problem", "draft"}, "style": {"problem", "draft"}}


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


# --------------------------------------------------------------------------- prompts


def oracle_prompt(mode: str, problem_text: str, draft: str | None = None) -> str:
    """The tiny-world prompt of ``mode`` (:data:`TINY_PROMPTS`)."""
    _check_mode(mode)
    if mode == "synth":
        if draft is not None:
            raise ValueError("draft: synth mode takes no draft")
        return TINY_PROMPTS[mode].format(problem=problem_text)
    if draft is None:
        raise ValueError(f"draft: {mode} mode needs a draft")
    return TINY_PROMPTS[mode].format(problem=problem_text, draft=draft)


def check_templates(templates: Mapping[str, str], where: str = "templates") -> None:
    """Raise ``ValueError`` naming the template (``templates.refine``) that lacks or has unknown placeholders."""
    missing_modes = [m for m in MODES if m not in templates]
    if missing_modes:
        raise ValueError(f"{where}: missing templates for modes {missing_modes}")
    for m in MODES:
        t = templates[m]
        if not isinstance(t, str):
            raise ValueError(f"{where}.{m}: expected a format string, got {type(t).__name__}")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
        except ValueError as e:
            raise ValueError(f"{where}.{m}: not a valid format string ({e}); write literal braces as {{{{ }}}}") from None
        if names - _FIELDS[m]:
            raise ValueError(f"{where}.{m}: unknown placeholders {sorted(names - _FIELDS[m])}; allowed {sorted(_FIELDS[m])}")
        if _FIELDS[m] - names:
            raise ValueError(f"{where}.{m}: missing placeholders {sorted(_FIELDS[m] - names)}")


def chat_messages(mode: str, problem: str, draft: str | None = None, templates: Mapping[str, str] | None = None,
                  system: str | None = PAPER_SYSTEM_PROMPT) -> list[dict]:
    """Chat messages (``[{"role", "content"}]``) of the paper-profile prompt of ``mode``."""
    _check_mode(mode)
    templates = PAPER_TEMPLATES if templates is None else templates
    check_templates(templates)
    if mode != "synth" and draft is None:
        raise ValueError(f"draft: {mode} mode needs a draft")
    fields = {"problem": problem} if mode == "synth" else {"problem": problem, "draft": draft}
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": templates[mode].format(**fields)})
    return msgs


def chat_prompt(tokenizer, mode: str, problem: str, draft: str | None = None,
                templates: Mapping[str, str] | None = None, system: str | None = PAPER_SYSTEM_PROMPT) -> str:
    """The chat prompt string (``tokenizer.apply_chat_template``, generation prompt added)."""
    msgs = chat_messages(mode, problem, draft, templates, system)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("tokenizer: has no chat template (use chat_messages for a model without one)")
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


# --------------------------------------------------------------------------- drafts

Step = tuple[Quantity, int, str, int, int]  # (quantity, a, op, b, result) as written


@dataclass(frozen=True)
class Draft:
    """A small-model-like draft solution. ``kind`` is a mistake kind or ``correct``; ``step`` the
    (1-based) derived step the mistake is in (0 for a correct draft)."""

    text: str
    dialect: str
    kind: str
    step: int = 0


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def tokenizer_max_number(tok) -> int:
    """Largest ``n`` such that every integer ``0..n`` is a single token of ``tok``."""
    vocab = tok.get_vocab()
    n = -1
    while str(n + 1) in vocab:
        n += 1
    if n < 0:
        raise ValueError("tok: has no number tokens")
    return n


def _propagate(problem: Problem, at: int, first: Callable[[dict[str, int]], tuple[int, str, int, int]]) -> list[Step]:
    """Steps computed on the draft's own (possibly wrong) values; step ``at`` (0-based) comes from ``first``."""
    vals = {q.name: q.value for q in problem.given}
    steps: list[Step] = []
    for i, q in enumerate(problem.derived):
        if i == at:
            a, op, b, r = first(vals)
        else:
            a, op, b = q.operands(vals)
            r = _apply(a, op, b)
        vals[q.name] = r
        steps.append((q, a, op, b, r))
    return steps


def _in_range(steps: list[Step], max_value: int) -> bool:
    return all(0 <= x <= max_value for _, a, _, b, r in steps for x in (a, b, r))


def _operand_options(problem: Problem, q: Quantity, vals: dict[str, int], const_range: tuple[int, int]):
    """Wrong-operand variants ``(a, op, b)`` of quantity ``q``: another quantity's value or a wrong constant."""
    a, op, b = q.operands(vals)
    earlier = [x.name for x in problem.quantities[: problem.quantities.index(q)]]
    out = []
    if q.op == "together":
        for other in earlier:
            if other not in q.args and vals[other] != b:
                out.append((a, op, vals[other]))
            if other not in q.args and vals[other] != a:
                out.append((vals[other], op, b))
    else:
        for other in earlier:
            if other != q.args[0] and vals[other] != a:
                out.append((vals[other], op, b))
        if q.op == "times":
            out.append((a, op, 5 - b))  # twice <-> three times
        else:
            lo, hi = const_range
            out += [(a, op, c) for c in range(lo, hi + 1) if c != b]
    return out


def make_draft(problem: Problem, dialect: str, kind: str, rng: np.random.Generator, max_value: int = 40,
               const_range: tuple[int, int] = (1, 9), attempts: int = 20) -> Draft | None:
    """A draft of ``problem`` in ``dialect`` with one mistake of ``kind`` (or ``correct``).

    The mistake's consequences propagate: later steps compute correctly from the wrong values. All
    numbers stay in ``[0, max_value]`` (so they are tokens of the world's vocabulary); ``None`` when
    ``kind`` cannot be realised within that range for this problem.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: unknown {dialect!r}; known {sorted(DIALECTS)}")
    if kind not in DRAFT_KINDS:
        raise ValueError(f"kind must be one of {DRAFT_KINDS}, got {kind!r}")
    n = problem.steps
    if kind == "correct":
        return Draft(render_solution(problem, dialect), dialect, kind, 0)
    if kind == "skip":
        at = int(rng.integers(n - 1)) if n > 1 else 0  # an intermediate step (the only one for 1 step)
        steps = _propagate(problem, -1, lambda v: (0, "+", 0, 0))
        kept = [s for i, s in enumerate(steps) if i != at]
        return Draft(render_steps(problem, dialect, kept, problem.answer), dialect, kind, at + 1)
    if kind == "cutoff":
        steps = _propagate(problem, -1, lambda v: (0, "+", 0, 0))
        j = int(rng.integers(n + 1))  # complete steps before the cut (n: cut just before the answer)
        text = render_steps(problem, dialect, steps[:j], None)
        d = DIALECTS[dialect]
        nxt = d.render_step(j + 1, problem, *steps[j]) if j < n else d.render_answer(problem.answer)
        words = nxt.split()[:-1] if nxt.split()[-1] in (".", ";") else nxt.split()
        if len(words) > 1 and (j == 0 or rng.random() < 0.5):  # often cut mid-sentence
            text = (text + " " + " ".join(words[: int(rng.integers(1, len(words)))])).strip()
        if not text:  # pragma: no cover - j == 0 always takes a fragment
            return None
        return Draft(text, dialect, kind, j + 1)
    for _ in range(attempts):
        at = int(rng.integers(n))
        q = problem.derived[at]
        if kind == "arithmetic":
            slip = int(rng.choice(SLIPS))

            def first(vals, q=q, slip=slip):
                a, op, b = q.operands(vals)
                return a, op, b, _apply(a, op, b) + slip
        else:  # operand
            vals0 = {x.name: x.value for x in problem.quantities}
            opts = _operand_options(problem, q, vals0, const_range)
            if not opts:
                continue
            a1, op1, b1 = opts[int(rng.integers(len(opts)))]

            def first(vals, a1=a1, op1=op1, b1=b1):
                return a1, op1, b1, _apply(a1, op1, b1)
        steps = _propagate(problem, at, first)
        if _in_range(steps, max_value):
            return Draft(render_steps(problem, dialect, steps, steps[-1][4]), dialect, kind, at + 1)
    return None


def sample_draft(problem: Problem, rng: np.random.Generator, kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                 dialects: Sequence[str] = SMALL_DIALECTS, max_value: int = 40,
                 const_range: tuple[int, int] = (1, 9)) -> Draft:
    """A draft with a dialect drawn uniformly from ``dialects`` and a kind drawn by ``kind_weights``.

    A kind that cannot be realised for the problem falls back to another mistake kind (``skip`` always can).
    """
    bad = set(kind_weights) - set(DRAFT_KINDS)
    if bad:
        raise ValueError(f"kind_weights: unknown kinds {sorted(bad)}; known {DRAFT_KINDS}")
    kinds = [k for k in DRAFT_KINDS if kind_weights.get(k, 0) > 0]
    if not kinds or any(w < 0 for w in kind_weights.values()):
        raise ValueError(f"kind_weights: need non-negative weights with a positive sum, got {dict(kind_weights)}")
    if not dialects:
        raise ValueError("dialects: empty")
    w = np.array([kind_weights[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    dialect = dialects[int(rng.integers(len(dialects)))]
    for k in (kind, "skip"):
        d = make_draft(problem, dialect, k, rng, max_value, const_range)
        if d is not None:
            return d
    raise AssertionError("unreachable: a skip draft always exists")  # pragma: no cover


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


def valid_content(problem: Problem, text: str) -> dict[str, tuple[int, str, int, int]]:
    """``name -> (a, op, b, r)`` of the valid steps of ``text`` (their content, as written)."""
    out: dict[str, tuple[int, str, int, int]] = {}
    pos = 0
    for sent in split_sentences(text):
        c = check_step(problem, sent, pos + 1)
        if c is None:
            continue
        pos += 1
        if c.valid and c.name not in out:
            g = DIALECTS[c.dialect].step_re.match(sent).groupdict()
            out[c.name] = (int(g["a"]), g["op"], int(g["b"]), int(g["r"]))
    return out


def repaired_steps(problem: Problem, draft: str) -> list[Step]:
    """Minimal repair: every derived quantity computed correctly, reusing the draft's valid steps as written."""
    kept = valid_content(problem, draft)
    vals = problem.values
    steps = []
    for q in problem.derived:
        a, op, b, r = kept.get(q.name) or (*q.operands(vals), q.value)
        steps.append((q, a, op, b, r))
    return steps


def oracle_target(mode: str, problem: Problem, draft: str | None = None, draft_dialect: str | None = None) -> str:
    """What the oracle should write in ``mode`` (the training target; also the :func:`perfect_oracle`).

    ``draft_dialect`` (style mode) defaults to :func:`text_dialect` of the draft.
    """
    _check_mode(mode)
    if mode == "synth":
        return render_solution(problem, ORACLE_DIALECT)
    if draft is None:
        raise ValueError(f"draft: {mode} mode needs a draft")
    steps = repaired_steps(problem, draft)
    if mode == "refine":
        return render_steps(problem, ORACLE_DIALECT, steps, problem.answer)
    d = draft_dialect or text_dialect(problem, draft)
    if d is None:
        raise ValueError(f"draft: cannot tell the dialect of the draft of {problem.pid} ({draft[:60]!r}); pass draft_dialect")
    return render_steps(problem, d, steps, problem.answer)


def mode_training_records(problems: Sequence[Problem], seed: int, *, modes: Sequence[str] = MODES,
                          drafts_per_problem: int = 1, kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
                          dialects: Sequence[str] = SMALL_DIALECTS, max_value: int = 40,
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
                d = sample_draft(p, rng, kind_weights, dialects, max_value, const_range)
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

Proposer = Callable[[str, list[Problem], list[str | None], int], list]
"""``(mode, problems, drafts, attempt) -> outputs`` (``str`` or :class:`~reasonlab.generate.Sample` each)."""

FAIL_REASONS = ("invalid", "dialect_mismatch", "unfinished", "draft_dialect_unknown")


def perfect_oracle(mode: str, problems: list[Problem], drafts: list[str | None], attempt: int) -> list[str]:
    """A :data:`Proposer` that writes the exact targets (for tests, and as an upper bound)."""
    return [oracle_target(mode, p, d) for p, d in zip(problems, drafts)]


def model_proposer(model, tok, *, seed: int, temperature: float = 0.0, retry_temperature: float = 0.8,
                   top_p: float = 1.0, max_new_tokens: int = 160, batch_size: int = 64) -> Proposer:
    """A :data:`Proposer` that prompts ``model``; attempt ``k`` samples with seed ``seed + k`` (retries at
    ``max(temperature, retry_temperature)``, so a greedy first try is followed by sampled ones)."""

    def propose(mode, problems, drafts, attempt):
        prompts = [oracle_prompt(mode, p.text, d) for p, d in zip(problems, drafts)]
        t = temperature if attempt == 0 else max(temperature, retry_temperature)
        cfg = SamplingConfig(n=1, temperature=t, top_p=top_p, max_new_tokens=max_new_tokens,
                             seed=seed + attempt, batch_size=batch_size)
        return [r[0] for r in generate(model, tok, prompts, cfg, desc=f"oracle {mode} #{attempt}")]

    return propose


def check_output(mode: str, problem: Problem, text: str, draft_dialect: str | None = None,
                 finished: bool = True) -> str | None:
    """Why an oracle output is rejected (one of :data:`FAIL_REASONS`), ``None`` if it is verified."""
    if not finished:
        return "unfinished"
    if not verify(problem, text).all_valid:
        return "invalid"
    if mode == "style" and uniform_dialect(problem, text) != draft_dialect:
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


def oracle_run(model, tok, mode: str, problems: Sequence[Problem], drafts: Sequence[str | None] | None = None, *,
               seed: int = 0, max_retries: int = 2, temperature: float = 0.0, retry_temperature: float = 0.8,
               top_p: float = 1.0, max_new_tokens: int = 160, batch_size: int = 64,
               proposer: Proposer | None = None) -> OracleResult:
    """Run the oracle in ``mode`` on ``problems`` (and ``drafts``, one per problem, for refine/style).

    Every output is verified (:func:`check_output`); unverified ones are retried (new seed) up to
    ``max_retries`` times; those still failing are counted in ``stats['failed_by_reason']`` and listed
    in ``failed``, never kept. ``proposer`` replaces the model (``model``/``tok`` may then be ``None``).

    ``stats``: ``mode, n, kept, failed, failed_by_reason, pass_rate`` (kept / n),
    ``first_try_pass_rate``, ``attempts`` (total generations), ``dialects`` (of the kept outputs), ``wall_s``.
    """
    _check_mode(mode)
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    problems = list(problems)
    pids = [p.pid for p in problems]
    if len(set(pids)) != len(pids):
        raise ValueError(f"problems: duplicate pids {[k for k, c in Counter(pids).items() if c > 1][:5]}")
    if mode == "synth":
        if drafts is not None and any(d is not None for d in drafts):
            raise ValueError("drafts: synth mode takes no drafts")
        drafts = [None] * len(problems)
    else:
        if drafts is None or len(drafts) != len(problems):
            raise ValueError(f"drafts: {mode} mode needs one draft per problem ({len(problems)}), "
                             f"got {None if drafts is None else len(drafts)}")
        if any(not isinstance(d, str) for d in drafts):
            raise ValueError(f"drafts: {mode} mode needs a string draft for every problem")
        drafts = list(drafts)
    if proposer is None:
        if model is None or tok is None:
            raise ValueError("model/tok: needed unless a proposer is given")
        proposer = model_proposer(model, tok, seed=seed, temperature=temperature, retry_temperature=retry_temperature,
                                  top_p=top_p, max_new_tokens=max_new_tokens, batch_size=batch_size)
    dialects = [text_dialect(p, d) if mode == "style" else None for p, d in zip(problems, drafts)]

    t0 = time.perf_counter()
    kept: dict[int, str] = {}
    reason: dict[int, str] = {}
    attempts = {p: 0 for p in pids}
    pending = []
    for i in range(len(problems)):
        if mode == "style" and dialects[i] is None:
            reason[i] = "draft_dialect_unknown"  # cannot check style preservation: fail, do not guess
        else:
            pending.append(i)
    first_try = 0
    n_gen = 0
    for attempt in range(max_retries + 1):
        if not pending:
            break
        outs = proposer(mode, [problems[i] for i in pending], [drafts[i] for i in pending], attempt)
        if len(outs) != len(pending):
            raise ValueError(f"proposer: returned {len(outs)} outputs for {len(pending)} prompts")
        n_gen += len(pending)
        still = []
        for i, o in zip(pending, outs):
            text, finished = (o.text, o.finished) if isinstance(o, Sample) else (str(o), True)
            attempts[pids[i]] = attempt + 1
            r = check_output(mode, problems[i], text, dialects[i], finished)
            if r is None:
                kept[i] = text
                reason.pop(i, None)
            else:
                reason[i] = r
                still.append(i)
        if attempt == 0:
            first_try = len(kept)
        pending = still
    n = len(problems)
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
        "dialects": dict(Counter(uniform_dialect(problems[i], kept[i]) or "mixed" for i in sorted(kept))),
        "max_retries": max_retries,
        "wall_s": time.perf_counter() - t0,
    }
    return OracleResult(mode, outputs, failed, attempts, stats)


__all__ = [
    "DEFAULT_KIND_WEIGHTS", "DRAFT_KINDS", "Draft", "FAIL_REASONS", "MISTAKE_KINDS", "MODES", "ORACLE_DIALECT",
    "OracleResult", "PAPER_SYSTEM_PROMPT", "PAPER_TEMPLATES", "Proposer", "TINY_PROMPTS", "chat_messages",
    "chat_prompt", "check_output", "check_templates", "make_draft", "mode_training_examples",
    "mode_training_records", "model_proposer", "oracle_prompt", "oracle_run", "oracle_target", "perfect_oracle",
    "repaired_steps", "sample_draft", "text_dialect", "tokenizer_max_number", "uniform_dialect", "valid_content",
]
