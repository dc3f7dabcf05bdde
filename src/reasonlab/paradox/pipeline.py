"""The Quality-Utility Paradox pipeline: the logic behind the thin ``stages/paradox_*.py`` scripts.

One function per DVC stage (each reads ``params.yaml`` through :class:`~reasonlab.params.Params`,
calls the library in :mod:`reasonlab.paradox` and writes its outputs atomically):

1. :func:`train_oracle_modes` (``paradox_oracle_modes``): ``models/oracle`` fine-tuned on the three
   prompted modes (synth / refine / style) from world-generated drafts with realistic mistakes,
   saved as ``models/oracle_modes``, with each mode's verified pass rate on held-out drafts.
2. :func:`sample_family` (``paradox_sample@<family>``): rejection sampling (N samples at T per
   problem, fragment filter, one correct trace kept per SLM-solvable problem) on the RFT problems,
   and (``sample.reward_problems``) on reward-role problems whose failures feed the reward model.
3. :func:`train_reward` (``paradox_reward_model``): the Bradley-Terry reward model on a pool of the
   configured composition (world sources plus the families' real failed samples), saved with its
   realised composition; accuracy on held-out pairs built on the RFT problems.
4. :func:`make_variants` (``paradox_variants@<family>``): the five sets on identical problem ids,
   every oracle output verified (saved as ``datasets``).
5. :func:`score_family` (``paradox_score@<family>``): per set the reward model's mean score with a
   95% bootstrap interval, verifier step validity, the base model's perplexity (global and Q1-Q4),
   token shift from the model's own samples and semantic preservation.
6. :func:`finetune_family` (``paradox_finetune@<family>``): every student (set x objective x seed,
   the same budget for every set), then Avg@k per tier; mean and sd over seeds.

Problems: the training pool is permuted under ``paradox.problems.seed`` and dealt round-robin to
three disjoint roles (:data:`ROLES`), so the oracle never trains on, and the reward model never
sees, the problems of the sets it later writes or scores.

Resuming: every student keeps its state under ``<ckpt_root>/paradox-ft-<family>-<student>-<key>/``
(outside the DVC outputs), ``key`` a hash of what determines its weights (base-model and set
contents, training params, objective, seed). A killed stage resumes in the student it was in;
finished students keep ``final.pt`` and their evaluation (keyed by the eval params), so changing
``paradox.student_eval`` re-evaluates without retraining. Delete ``.ckpt/paradox-*`` to reclaim space.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..evaluate import evaluate_tier, mean_sd, tiny_items
from ..io import ckpt_root as ckpt_root_dir
from ..io import fresh_tmp_dir, params_hash, replace_dir, setup_threads, write_json
from ..models.train import train
from ..params import ModelParams, Params, ParamsError, TrainParams
from ..world.problems import Problem
from .config import ParadoxConfig
from .rejection import RejectionResult, RftTrace

ROLES = ("rft", "oracle_modes", "reward")

__all__ = [
    "ROLES", "aggregate_students", "check_paradox_params", "digest", "finetune_family",
    "finetune_steps", "finetune_train_params", "load_rft", "make_variants", "role_problems", "sample_family",
    "save_rft", "score_family", "student_name", "students", "train_oracle_modes", "train_reward",
]


# ----------------------------------------------------------------------------- params
def check_paradox_params(P: Params, family: str | None = None) -> ParadoxConfig:
    """``P.paradox`` after the checks that need the rest of params.yaml (raise :class:`ParamsError`)."""
    pc = P.paradox
    for f in pc.families:
        if f not in P.models:
            raise ParamsError(f"params.yaml: paradox.families: {f!r} is not a models entry (known: {sorted(P.models)})")
        if P.models[f].role != "small":
            raise ParamsError(f"params.yaml: paradox.families: models.{f} has role {P.models[f].role!r}, not 'small'")
    if pc.oracle not in P.models:
        raise ParamsError(f"params.yaml: paradox.oracle: {pc.oracle!r} is not a models entry (known: {sorted(P.models)})")
    if family is not None and family not in pc.families:
        raise ParamsError(f"params.yaml: paradox.families {pc.families} does not list {family!r}")
    return pc


def _loop(cfg) -> TrainParams:
    return TrainParams(**{k: getattr(cfg, k) for k in TrainParams.model_fields})


def finetune_steps(n_examples: int, epochs: float, batch_size: int) -> int:
    """The common budget of every student: ``ceil(epochs * n / batch_size)`` steps (at least 1)."""
    if n_examples < 1:
        raise ValueError("no examples to fine-tune on")
    return max(1, math.ceil(epochs * n_examples / batch_size))


def finetune_train_params(pc: ParadoxConfig, n_examples: int) -> TrainParams:
    ft = pc.finetune
    steps = finetune_steps(n_examples, ft.epochs, ft.batch_size)
    return TrainParams(steps=steps, batch_size=ft.batch_size, lr=ft.lr, min_lr_ratio=ft.min_lr_ratio,
                       warmup=int(ft.warmup_ratio * steps), weight_decay=ft.weight_decay, grad_clip=ft.grad_clip,
                       ckpt_every=ft.ckpt_every, log_every=ft.log_every, max_len=ft.max_len)


# ----------------------------------------------------------------------------- data
def role_problems(world_dir: str | Path, role: str, n: int, seed: int) -> list[Problem]:
    """The first ``n`` training-pool problems of ``role`` (one of :data:`ROLES`).

    The pool is permuted under ``seed`` and dealt round-robin to the roles, so the roles are
    disjoint and each one's problems do not depend on how many the other roles use.
    """
    from ..world.build import load_split, row_problem

    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    ds = load_split(world_dir, "train")
    perm = np.random.default_rng([seed, 11]).permutation(len(ds))
    mine = perm[ROLES.index(role):: len(ROLES)]
    if n > len(mine):
        raise ParamsError(f"params.yaml: paradox.problems.{role}={n} exceeds the {len(mine)} problems of that role "
                          f"(a third of world.train_size={len(ds)})")
    where = str(Path(world_dir) / "train")
    rows = ds.select([int(i) for i in mine[:n]])
    return [row_problem(r, where) for r in rows]


def save_rft(res: RejectionResult, path: str | Path) -> None:
    write_json(path, {"stats": res.stats, "traces": {pid: asdict(t) for pid, t in res.traces.items()},
                      "samples": res.samples})


def load_rft(path: str | Path) -> RejectionResult:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"rejection samples not found: {path} (run its paradox_sample stage first)")
    try:
        d = json.loads(path.read_text())
        traces = {pid: RftTrace(**t) for pid, t in d["traces"].items()}
        return RejectionResult(traces, d["samples"], d["stats"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a rejection-sampling result ({e})") from None


def failed_samples(res: RejectionResult) -> dict[str, list[str]]:
    """Complete (non-fragment) samples that are not fully valid: ``pid -> texts`` (distinct)."""
    out: dict[str, list[str]] = {}
    for pid, recs in res.samples.items():
        texts = list(dict.fromkeys(r["text"] for r in recs if r["reason"] is None and not r["all_valid"]))
        if texts:
            out[pid] = texts
    return out


def own_samples(res: RejectionResult) -> list[str]:
    """The model's own complete samples (the token-shift reference)."""
    return [r["text"] for recs in res.samples.values() for r in recs if r["reason"] is None]


def digest(path: str | Path) -> str:
    """Content hash of a file or of a directory's files (recursively; ``meta.json`` excluded)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file() and f.name != "meta.json")
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _load_lm(model_dir: str | Path):
    from ..models.zoo import load_causal_lm, load_tokenizer_any

    return load_causal_lm(model_dir), load_tokenizer_any(model_dir)


# ----------------------------------------------------------------------------- 1. oracle modes
def train_oracle_modes(P: Params, oracle_dir: str | Path, world_dir: str | Path, out: str | Path,
                       live_dir: str | Path | None = None, ckpt_root: str | Path = ".ckpt") -> dict:
    """Stage ``paradox_oracle_modes``: fine-tune the base oracle on its three prompted modes."""
    from ..models.zoo import save_model_atomic
    from .oracle import MODES, mode_training_examples, oracle_run, sample_draft, tokenizer_max_number

    setup_threads()
    pc = check_paradox_params(P)
    om = pc.oracle_modes
    spec = P.model(pc.oracle)
    if spec.hub_id:  # paper profile: a prompted LLM oracle has its modes already (chat templates)
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "meta.json", {"hub_id": spec.hub_id, "prompting": "chat", "templates": pc.templates.model_dump()})
        return {"oracle": pc.oracle, "hub_id": spec.hub_id}
    model, tok = _load_lm(oracle_dir)
    probs = role_problems(world_dir, "oracle_modes", pc.problems.oracle_modes + om.eval_problems, pc.problems.seed)
    train_p, eval_p = probs[: pc.problems.oracle_modes], probs[pc.problems.oracle_modes:]
    const_range = tuple(P.world.const_range)
    exs = mode_training_examples(train_p, tok, seed=P.seed, drafts_per_problem=om.drafts_per_problem,
                                 kind_weights=dict(om.kind_weights), const_range=const_range)
    cfg = _loop(om)
    key = params_hash({"oracle": digest(oracle_dir), "train": om.model_dump(), "seed": P.seed,
                       "problems": pc.problems.model_dump(), "world": P.world.model_dump()})
    ck = ckpt_root_dir(ckpt_root) / f"paradox-oracle-modes-{key}"
    stats = train(model, exs, cfg, pad_id=tok.pad_token_id, seed=P.seed, ckpt_dir=ck, live_dir=live_dir,
                  desc="oracle modes")
    # each mode on held-out problems with fresh drafts: one greedy try, verified
    modes_eval = {}
    if eval_p:
        rng_drafts = [sample_draft(p, np.random.default_rng([P.seed, 97, i]), dict(om.kind_weights),
                                   max_value=tokenizer_max_number(tok), const_range=const_range)
                      for i, p in enumerate(eval_p)]
        drafts = [d.text for d in rng_drafts]
        for mode in MODES:
            r = oracle_run(model, tok, mode, eval_p, None if mode == "synth" else drafts, seed=P.seed, max_retries=0,
                           max_new_tokens=pc.oracle_run.max_new_tokens, batch_size=pc.oracle_run.batch_size)
            modes_eval[mode] = {"pass_rate": r.stats["pass_rate"], "failed_by_reason": r.stats["failed_by_reason"]}
    meta = {"model": "oracle_modes", "base": pc.oracle, "oracle_modes": om.model_dump(), "seed": P.seed,
            "n_examples": len(exs)}
    save_model_atomic(model, tok, out, meta)
    shutil.rmtree(ck, ignore_errors=True)  # finished: the saved model supersedes the checkpoint
    return {"oracle": pc.oracle, "n_problems": len(train_p), "n_examples": len(exs), **stats,
            "held_out": {"n": len(eval_p), **modes_eval}}


# ----------------------------------------------------------------------------- 2. rejection sampling
def sample_family(P: Params, family: str, model_dir: str | Path, world_dir: str | Path, out: str | Path) -> dict:
    """Stage ``paradox_sample@<family>``: ``out/rft.json`` (RFT problems) and ``out/reward.json``
    (reward-role problems, only when ``sample.reward_problems > 0``). Returns the metrics."""
    from ..generate import pick_backend
    from .rejection import rejection_sample

    setup_threads()
    pc = check_paradox_params(P, family)
    sc = pc.sample
    backend = pick_backend(P.eval.backend)
    model, tok = _load_lm(model_dir)
    kw = dict(n=sc.n, temperature=sc.temperature, top_p=sc.top_p, seed=P.seed, max_new_tokens=sc.max_new_tokens,
              batch_size=sc.batch_size, backend=backend, model_path=model_dir)
    tmp = fresh_tmp_dir(out)
    rft = rejection_sample(model, tok, role_problems(world_dir, "rft", pc.problems.rft, pc.problems.seed), **kw)
    if len(rft.traces) < pc.problems.min_ids:
        raise RuntimeError(f"{family}: {len(rft.traces)} problems solved in {rft.stats['n_samples']} samples "
                           f"(paradox.problems.min_ids={pc.problems.min_ids}); raise paradox.problems.rft or "
                           "paradox.sample.n, or train the model longer")
    save_rft(rft, tmp / "rft.json")
    metrics = {"family": family, "rft": rft.stats}
    if sc.reward_problems:
        rw = rejection_sample(model, tok, role_problems(world_dir, "reward", sc.reward_problems, pc.problems.seed), **kw)
        save_rft(rw, tmp / "reward.json")
        metrics["reward"] = {**rw.stats, "failed_problems": len(failed_samples(rw))}
    replace_dir(tmp, Path(out))
    return metrics


# ----------------------------------------------------------------------------- 3. reward model
def _rm_spec(pc: ParadoxConfig) -> ModelParams:
    m = pc.reward.model
    return ModelParams(arch=m.arch, dialect="oracle", hidden=m.hidden, layers=m.layers, heads=m.heads,
                       kv_heads=m.kv_heads, intermediate=m.intermediate)


def _merge_failed(sample_dirs: Sequence[str | Path], name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in sample_dirs:
        f = Path(d) / name
        for pid, texts in failed_samples(load_rft(f)).items():
            out.setdefault(pid, []).extend(texts)
    return out


def train_reward(P: Params, world_dir: str | Path, samples_root: str | Path, out: str | Path,
                 live_dir: str | Path | None = None) -> dict:
    """Stage ``paradox_reward_model``: build the pair pool, train the reward model, save both.

    Training pairs are built on reward-role problems; held-out pairs (same composition) on the RFT
    problems. The ``rft_failed`` source is every family's complete but incorrect rejection samples
    (``samples_root/<family>/reward.json``, and ``rft.json`` for the held-out pairs). Writes the model
    to ``out`` and the realised composition to ``out/pool.json``; returns the metrics.
    """
    from ..models.zoo import save_model_atomic
    from ..world.tokenizer import load_tokenizer
    from .reward import PoolComposition, build_reward_model, build_rm_pool, pairwise_eval, train_reward_model, world_sources

    setup_threads()
    pc = check_paradox_params(P)
    rc = pc.reward
    if rc.model.hub_id:  # paper profile: a released reward model is used as is
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "meta.json", {"hub_id": rc.model.hub_id})
        return {"hub_id": rc.model.hub_id}
    sample_dirs = [Path(samples_root) / f for f in pc.families]
    requested = {"n_pairs": rc.pool.n_pairs, "chosen": dict(rc.pool.chosen), "rejected": dict(rc.pool.rejected)}
    uses = {k for side in ("chosen", "rejected") for k, v in requested[side].items() if v > 0}
    tok = load_tokenizer(Path(world_dir) / "tokenizer")
    rm_probs = role_problems(world_dir, "reward", pc.problems.reward, pc.problems.seed)
    sources = world_sources(rm_probs, seed=P.seed, max_value=P.world.max_value)
    if "rft_failed" in uses:
        sources["rft_failed"] = _merge_failed(sample_dirs, "reward.json")
        if not sources["rft_failed"]:
            raise RuntimeError("paradox.reward.pool uses rft_failed but the families produced no failed sample on "
                               "reward-role problems (raise paradox.sample.reward_problems)")
    pool = build_rm_pool(rm_probs, sources, PoolComposition.from_dict(requested), seed=P.seed)
    problems = list(rm_probs)
    eval_pool = None
    if rc.pool.eval_pairs:
        rft_probs = role_problems(world_dir, "rft", pc.problems.rft, pc.problems.seed)
        ev_sources = world_sources(rft_probs, seed=P.seed + 1, max_value=P.world.max_value)
        if "rft_failed" in uses:
            ev_sources["rft_failed"] = _merge_failed(sample_dirs, "rft.json")
        eval_pool = build_rm_pool(rft_probs, ev_sources, PoolComposition.from_dict({**requested, "n_pairs": rc.pool.eval_pairs}),
                                  seed=P.seed + 1)
        problems += rft_probs
    model = build_reward_model(_rm_spec(pc), tok, seed=P.seed)
    live = None
    if live_dir is not None:
        from dvclive import Live

        live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)

    def on_log(step, loss):
        if live is not None:
            live.step = step
            live.log_metric("loss", loss)

    stats = train_reward_model(model, tok, problems, pool, _loop(rc.train), seed=P.seed,
                               eval_pairs=eval_pool.pairs if eval_pool else None, on_log=on_log)
    if live is not None:
        live.end()
    train_eval = pairwise_eval(model, tok, problems, pool.pairs, max_len=rc.train.max_len)
    composition = {"requested": requested, "realised": pool.composition, "dialects": pool.dialects,
                   "n_pairs": len(pool.pairs), "n_problems": len({p.pid for p in pool.pairs}),
                   "sources": {s: sum(len(v) for v in src.values()) for s, src in sources.items()}}
    save_model_atomic(model, tok, out, {"model": "reward_model", "spec": rc.model.model_dump(),
                                        "train": rc.train.model_dump(), "seed": P.seed, "pool": composition})
    write_json(Path(out) / "pool.json", {**composition, "pairs": [asdict(p) for p in pool.pairs]})
    return {"pool": composition, "train_accuracy": train_eval["accuracy"], "train_loss": train_eval["loss"],
            "heldout_accuracy": stats["accuracy_after"] if eval_pool else None,
            "heldout_loss": stats["loss_after"] if eval_pool else None,
            "heldout_pairs": len(eval_pool.pairs) if eval_pool else 0, **{k: stats[k] for k in ("steps", "final_loss", "wall_s")}}


def load_reward_model(path: str | Path):
    from transformers import AutoModelForSequenceClassification

    from ..models.zoo import load_tokenizer_any

    path = Path(path)
    meta = path / "meta.json"
    src = str(path)
    if meta.exists() and not (path / "config.json").exists():
        src = json.loads(meta.read_text()).get("hub_id") or src
    elif not (path / "config.json").exists():
        raise FileNotFoundError(f"no reward model at {path} (run paradox_reward_model first)")
    model = AutoModelForSequenceClassification.from_pretrained(src)
    model.eval()
    return model, load_tokenizer_any(src)


# ----------------------------------------------------------------------------- 4. variants
def chat_proposer(model, tok, templates: Mapping[str, str], system: str | None, *, seed: int, temperature: float,
                  retry_temperature: float, top_p: float, max_new_tokens: int, batch_size: int):
    """A :data:`~reasonlab.paradox.oracle.Proposer` prompting a chat model with the paper-profile templates."""
    from ..generate import SamplingConfig, generate
    from .oracle import chat_prompt

    def propose(mode, problems, drafts, attempt):
        prompts = [chat_prompt(tok, mode, p.text, d, templates, system) for p, d in zip(problems, drafts)]
        t = temperature if attempt == 0 else max(temperature, retry_temperature)
        cfg = SamplingConfig(n=1, temperature=t, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed + attempt,
                             batch_size=batch_size)
        return [r[0] for r in generate(model, tok, prompts, cfg, desc=f"oracle {mode} #{attempt}")]

    return propose


def make_variants(P: Params, family: str, oracle_dir: str | Path, world_dir: str | Path, sample_dir: str | Path,
                  out: str | Path) -> dict:
    """Stage ``paradox_variants@<family>``: the five sets (``out/<set>/``, ``datasets``) and ``out/report.json``."""
    from .oracle import oracle_run, perfect_oracle
    from .variants import build_variants, save_variants

    setup_threads()
    pc = check_paradox_params(P, family)
    orc = pc.oracle_run
    rft = load_rft(Path(sample_dir) / "rft.json")
    probs = role_problems(world_dir, "rft", pc.problems.rft, pc.problems.seed)
    kw = dict(seed=P.seed, temperature=orc.temperature, retry_temperature=orc.retry_temperature, top_p=orc.top_p,
              max_new_tokens=orc.max_new_tokens, batch_size=orc.batch_size)
    meta_path = Path(oracle_dir) / "meta.json"
    hub_id = json.loads(meta_path.read_text()).get("hub_id") if meta_path.exists() else None
    if orc.proposer == "perfect":  # the exact targets: an upper bound (and the smoke profile's oracle)
        oracle = partial(oracle_run, None, None, max_retries=orc.max_retries, proposer=perfect_oracle)
    elif hub_id and not (Path(oracle_dir) / "config.json").exists():  # paper profile: prompted chat oracle
        model, tok = _load_lm(hub_id)
        proposer = chat_proposer(model, tok, pc.templates.modes(), pc.templates.system, **kw)
        oracle = partial(oracle_run, None, None, max_retries=orc.max_retries, proposer=proposer)
    else:
        model, tok = _load_lm(oracle_dir)
        oracle = partial(oracle_run, model, tok, max_retries=orc.max_retries, **kw)
    t0 = time.perf_counter()
    vs = build_variants(rft, probs, oracle)
    if len(vs.pids) < pc.problems.min_ids:
        raise RuntimeError(f"{family}: {len(vs.pids)} problems kept in all five sets (every oracle mode must "
                           f"verify; paradox.problems.min_ids={pc.problems.min_ids}); dropped by mode: "
                           f"{vs.report['dropped_by_mode']}")
    tmp = fresh_tmp_dir(out)
    save_variants(vs, tmp)
    replace_dir(tmp, Path(out))
    r = vs.report
    return {"family": family, "proposer": orc.proposer, "n_solvable": r["n_solvable"], "n_ids": r["n_kept"],
            "n_dropped": r["n_dropped"],
            "kept_fraction": r["n_kept"] / r["n_solvable"] if r["n_solvable"] else 0.0,
            "dropped_by_mode": r["dropped_by_mode"],
            "oracle": {m: {k: s[k] for k in ("pass_rate", "first_try_pass_rate", "attempts")} for m, s in r["oracle"].items()},
            "wall_s": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- 5. scoring
def score_family(P: Params, family: str, model_dir: str | Path, rm_dir: str | Path, world_dir: str | Path,
                 sample_dir: str | Path, variants_dir: str | Path, out: str | Path) -> dict:
    """Stage ``paradox_score@<family>``: per set RM score (mean, 95% CI), step validity, perplexity
    (global, Q1-Q4), token shift and semantic preservation. Writes ``out/analysis.json`` (the full
    analysis) and ``out/scores.csv`` (one RM score per trace); returns the small metrics."""
    import pandas as pd

    from .analysis import analyze_variants
    from .reward import score, score_summary
    from .variants import load_variants

    setup_threads()
    pc = check_paradox_params(P, family)
    ac = pc.analysis
    sets = load_variants(variants_dir)
    by_pid = {p.pid: p for p in role_problems(world_dir, "rft", pc.problems.rft, pc.problems.seed)}
    rm, rm_tok = load_reward_model(rm_dir)
    base, tok = _load_lm(model_dir)
    rft = load_rft(Path(sample_dir) / "rft.json")
    n_ids = len(next(iter(sets.values())))
    if n_ids == 0:  # nothing survived (allowed by paradox.problems.min_ids=0): say so, score nothing
        tmp = fresh_tmp_dir(out)
        write_json(tmp / "analysis.json", {"rm": {}, "sets": {}})
        pd.DataFrame(columns=["set", "pid", "rm_score"]).to_csv(tmp / "scores.csv", index=False)
        replace_dir(tmp, Path(out))
        return {"family": family, "n_ids": 0, "sets": {}, "wall_s": 0.0}
    t0 = time.perf_counter()
    rows, rm_summ = [], {}
    for name, ds in sets.items():
        probs = [by_pid[pid] for pid in ds["pid"]]
        s = score(rm, rm_tok, probs, list(ds["solution"]), batch_size=pc.reward.score_batch_size,
                  max_len=pc.reward.train.max_len)
        rm_summ[name] = score_summary(s, n_boot=ac.n_boot, seed=P.seed)
        rows += [{"set": name, "pid": pid, "rm_score": float(v)} for pid, v in zip(ds["pid"], s)]
    ana = analyze_variants(base, tok, sets, list(by_pid.values()), own_samples(rft), batch_size=ac.batch_size,
                           max_len=pc.finetune.max_len, top=ac.top_tokens)
    tmp = fresh_tmp_dir(out)
    write_json(tmp / "analysis.json", {"rm": rm_summ, "sets": ana})
    pd.DataFrame(rows).to_csv(tmp / "scores.csv", index=False)
    replace_dir(tmp, Path(out))
    sets_m = {}
    for name in sets:
        a, r = ana[name], rm_summ[name]
        ppl = a["perplexity"]
        sets_m[name] = {
            "rm_score": r["mean"], "rm_ci95": list(r["ci95"]), "rm_sd": r["sd"],
            "step_validity": a["quality"]["step_validity"], "all_valid": a["quality"]["all_valid"],
            "ppl": ppl["ppl"], **{f"ppl_{q.lower()}": ppl["quarters"][q]["ppl"] for q in ppl["quarters"]},
            "tv_distance": a["token_shift"]["tv_distance"], "symbolic_share": a["token_shift"]["symbolic_share"],
            "mean_tokens": a["token_shift"]["mean_tokens"],
            "preservation": a.get("preservation", {}).get("mean"),
        }
    return {"family": family, "n_ids": n_ids, "sets": sets_m, "wall_s": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- 6. students
def students(pc: ParadoxConfig) -> list[tuple[str, str, int]]:
    """Every ``(set, objective, seed)`` of one family, in run order."""
    ft = pc.finetune
    return [(s, o, seed) for s in ft.sets for o in ft.objectives for seed in ft.seeds]


def student_name(set_name: str, objective: str, seed: int) -> str:
    return f"{set_name}-{objective}-s{seed}"


def _suite(world_dir: str | Path, ev) -> dict[str, list]:
    from ..world.build import load_problems

    out = {}
    for t in ev.tiers:
        probs = load_problems(Path(world_dir), f"test_{t}")
        out[t] = tiny_items(probs[: ev.limit] if ev.limit else probs)
    return out


def evaluate_student(model, tok, suite: Mapping[str, list], ev, seed: int) -> dict:
    """Per tier ``avg_at_k``, ``greedy``, ``mean_len_tokens``, ``step_validity``; ``avg_at_k`` (tier mean).

    Keys do not depend on ``k`` (stable ``dvc exp show`` columns); every student is sampled with
    the same seed (common random numbers)."""
    out: dict = {}
    for tier, items in suite.items():
        m, _ = evaluate_tier(model, tok, list(items), k=ev.k, temperature=ev.temperature, top_p=ev.top_p,
                             max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size, seed=seed, tier=tier)
        out[tier] = {"avg_at_k": m[f"avg@{ev.k}"], "greedy": m["greedy"], "mean_len_tokens": m["mean_len_tokens"],
                     "step_validity": m["step_validity"]}
    out["avg_at_k"] = float(np.mean([out[t]["avg_at_k"] for t in suite]))
    return out


def aggregate_students(records: Sequence[Mapping], tiers: Sequence[str]) -> dict:
    """``{set: {objective: {"avg", "sd", "per_seed", <tier>, <tier>_sd}}}``: mean and sd over seeds.

    ``records``: one per student with ``set, objective, seed, avg_at_k`` and ``<tier>.avg_at_k``.
    """
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for r in records:
        groups.setdefault((r["set"], r["objective"]), []).append(r)
    out: dict[str, dict] = {}
    for (s, o), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        m, sd = mean_sd([r["avg_at_k"] for r in rs])
        d = {"avg": m, "sd": sd, "per_seed": [r["avg_at_k"] for r in rs], "seeds": [r["seed"] for r in rs]}
        for t in tiers:
            tm, tsd = mean_sd([r[t]["avg_at_k"] for r in rs])
            d[t], d[f"{t}_sd"] = tm, tsd
        out.setdefault(s, {})[o] = d
    return out


def finetune_family(P: Params, family: str, model_dir: str | Path, world_dir: str | Path, variants_dir: str | Path,
                    out: str | Path, plots_dir: str | Path, ckpt_root: str | Path = ".ckpt") -> dict:
    """Stage ``paradox_finetune@<family>``: train and evaluate every student of ``family``.

    Writes ``out/students.json`` (one record per student, and the base model's evaluation) and
    the students' training curves (dvclive) to ``plots_dir/<student>/``; returns the metrics
    (mean and sd over seeds of Avg@k per set and objective, overall and per tier).
    """
    from ..models.losses import LOSSES
    from .variants import load_variants, variant_examples

    setup_threads()
    pc = check_paradox_params(P, family)
    ev = pc.student_eval
    sets = load_variants(variants_dir)
    n_ids = len(next(iter(sets.values())))
    cfg = finetune_train_params(pc, max(n_ids, 1))
    base, tok = _load_lm(model_dir)
    suite = _suite(world_dir, ev)
    root = ckpt_root_dir(ckpt_root)
    eval_key = params_hash({"eval": ev.model_dump(), "seed": P.seed})
    base_key = {"model": digest(model_dir), "train": cfg.model_dump()}

    base_eval_path = root / f"paradox-base-{family}-{digest(model_dir)}-eval-{eval_key}.json"
    if base_eval_path.exists():
        base_ev = json.loads(base_eval_path.read_text())
    else:
        base_ev = evaluate_student(base, tok, suite, ev, P.seed)
        write_json(base_eval_path, base_ev)

    plots_tmp = fresh_tmp_dir(plots_dir)
    records = []
    t_all = time.perf_counter()
    for set_name, obj, seed in students(pc) if n_ids else []:  # no ids (min_ids=0): the base model only
        name = student_name(set_name, obj, seed)
        ds = sets[set_name]
        key = params_hash({**base_key, "set": params_hash(list(zip(ds["pid"], ds["solution"]))), "objective": obj,
                           "seed": seed})
        ck = root / f"paradox-ft-{family}-{name}-{key}"
        ck.mkdir(parents=True, exist_ok=True)
        desc = f"finetune {family} {name}"
        student = copy.deepcopy(base)
        final, stats_path = ck / "final.pt", ck / "train.json"
        if final.exists() and stats_path.exists():
            student.load_state_dict(torch.load(final, weights_only=True))
            stats = json.loads(stats_path.read_text())
            print(f"[{desc}] finished earlier: reusing {final}")
        else:
            student.train()
            stats = train(student, variant_examples(ds, tok), cfg, pad_id=tok.pad_token_id, seed=seed, ckpt_dir=ck,
                          live_dir=ck / "live", loss_fn=LOSSES[obj], desc=desc)
            tmp = final.with_name(final.name + ".tmp")
            torch.save(student.state_dict(), tmp)
            os.replace(tmp, final)
            write_json(stats_path, stats)
            (ck / "state.pt").unlink(missing_ok=True)  # optimizer state: only needed to resume mid-run
        student.eval()
        eval_path = ck / f"eval-{eval_key}.json"
        if eval_path.exists():
            res = json.loads(eval_path.read_text())
        else:
            res = evaluate_student(student, tok, suite, ev, P.seed)
            write_json(eval_path, res)
        if (ck / "live").exists():
            shutil.copytree(ck / "live", plots_tmp / name)
        records.append({"student": name, "set": set_name, "objective": obj, "seed": seed, **res,
                        "final_loss": stats.get("final_loss"), "train_s": stats.get("wall_s"), "steps": stats.get("steps")})
        print(f"[{desc}] avg@{ev.k}={res['avg_at_k']:.4f} (base {base_ev['avg_at_k']:.4f})")
    tmp = fresh_tmp_dir(out)
    write_json(tmp / "students.json", {"family": family, "k": ev.k, "tiers": list(ev.tiers), "steps": cfg.steps,
                                       "train": cfg.model_dump(), "base": base_ev, "students": records})
    replace_dir(tmp, Path(out))
    replace_dir(plots_tmp, Path(plots_dir))
    agg = aggregate_students(records, ev.tiers)
    return {"family": family, "k": ev.k, "n_ids": n_ids, "steps": cfg.steps, "lr": cfg.lr, "batch_size": cfg.batch_size,
            "epochs": pc.finetune.epochs, "base": {"avg": base_ev["avg_at_k"], **{t: base_ev[t]["avg_at_k"] for t in ev.tiers}},
            "sets": agg, "wall_s": time.perf_counter() - t_all}
