"""How much base-model capability a training budget buys on the tiny world (a study, not a stage).

Every base model of world v2 sits at the floor after the tiny profile's 400 pretraining steps (Avg@16 under 10% on
every tier), so no paper claim is testable. This script measures what moves that: it pretrains one model of the zoo
exactly as ``stages/pretrain.py`` does (same examples, loop, schedule), with any params overridden, and probes the
model every ``--probe-every`` steps with greedy decoding on the validation split (never a test tier): answer
accuracy, share of valid steps, share of fully valid traces, and the share of the trace's names that are people of
the problem (the first thing a model that reads its prompt gets right); and the greedy accuracy on as many problems
of the pretraining pool (``train_acc``: what the model memorised against what it learned), and the mean target-token
loss on both (``val_loss``, ``train_loss``), and on the validation problems the mean loss on the target tokens
that carry the reasoning, people's names and numbers (``val_content_loss``: far less noisy than greedy accuracy on
200 problems, and blind to the dialect's wording, which most target tokens are).

    python benchmarks/capability.py --model llama --steps 1600 --probe-every 200 --out benchmarks/results/cap_llama_1600.jsonl
    python benchmarks/capability.py --model llama --steps 800 --set world.distractors=[0,0] --set world.shuffle=false ...

``--final-k K`` ends the run as the pipeline reads a model (world v3's targets): ``K`` samples at the eval stage's
temperature on the first ``--final-n`` problems of every test tier (Avg@K, pass@K, the share of samples that are fully
valid) and on the probed validation problems, where it also estimates what rejection sampling would keep: the share
of problems solved, and over solved problems the expected share of fully valid traces among their right samples
(``rft_valid``: the ``valid_trace_fraction`` of a stage that picks one right sample at random).

The schedule is the stage's (warmup, cosine to ``min_lr_ratio``) over ``--steps``, so an intermediate probe of a
long run is not the end point of a shorter run: it is a lower bound on what that many steps give. World overrides
build a world of their own in a temporary directory (``make_world``, as the ``world`` stage does).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reasonlab.evaluate import probe_accuracy
from reasonlab.generate import SamplingConfig, generate
from reasonlab.io import setup_threads
from reasonlab.models.batching import Example
from reasonlab.models.data import pretrain_examples
from reasonlab.models.losses import ce_loss
from reasonlab.models.train import lm_batch_loss, train
from reasonlab.models.zoo import build_model, load_tokenizer, n_non_embedding_params
from reasonlab.params import parse_params
from reasonlab.profiles import compose
from reasonlab.world.build import load_split, make_world
from reasonlab.world.problems import NAMES
from reasonlab.world.tasks import open_task

ROOT = Path(__file__).resolve().parents[1]


def name_share(problem, text: str) -> float:
    """Share of the trace's person names (words of the world's name list) that are people of ``problem``."""
    people = {q.name for q in problem.quantities}
    said = [w for w in text.split() if w in NAMES]
    return float(np.mean([w in people for w in said])) if said else 0.0


def probe(model, tok, items, max_new_tokens: int) -> dict:
    outs = generate(model, tok, [it.prompt for it in items], SamplingConfig(1, 0.0, 1.0, max_new_tokens, 0, 512),
                    desc="probe")
    v = [it.check(o[0].text) for it, o in zip(items, outs)]
    by_steps: dict[int, list[bool]] = {}
    for it, x in zip(items, v):
        by_steps.setdefault(it.problem.steps, []).append(x.correct)
    return {"acc": float(np.mean([x.correct for x in v])),
            "acc_by_steps": {k: float(np.mean(c)) for k, c in sorted(by_steps.items())},
            "step_validity": float(np.mean([x.step_validity for x in v])),
            "all_valid": float(np.mean([x.all_valid for x in v])),
            "name_share": float(np.mean([name_share(it.problem, o[0].text) for it, o in zip(items, outs)]))}


def sample_summary(items, texts: list[list[str]]) -> dict:
    """Avg@k and what rejection sampling keeps, from ``texts[i]`` (the ``k`` samples of ``items[i]``; see the module
    docstring): ``avg``, ``pass`` (share of problems solved), ``all_valid`` (share of samples fully valid),
    ``avg_by_steps`` and ``rft_valid`` (over solved problems, the share of fully valid samples among the right ones)."""
    checks = [[it.check(t) for t in ts] for it, ts in zip(items, texts)]
    correct = np.array([[v.correct for v in vs] for vs in checks], dtype=float)
    valid = np.array([[v.all_valid for v in vs] for vs in checks], dtype=float)
    right = correct.sum(axis=1)
    solved = right > 0
    by_steps: dict[int, list[float]] = {}
    for it, c in zip(items, correct):
        by_steps.setdefault(it.problem.steps, []).append(float(c.mean()))
    return {"avg": float(correct.mean()), "pass": float(solved.mean()), "all_valid": float(valid.mean()),
            "avg_by_steps": {s: float(np.mean(v)) for s, v in sorted(by_steps.items())},
            "rft_valid": float(np.mean(valid.sum(axis=1)[solved] / right[solved])) if solved.any() else 0.0,
            "n": len(items), "k": correct.shape[1]}


def sampled(model, tok, items, k: int, temperature: float, max_new_tokens: int, seed: int) -> dict:
    """:func:`sample_summary` of ``k`` samples per item at ``temperature``."""
    outs = generate(model, tok, [it.prompt for it in items],
                    SamplingConfig(k, temperature, 1.0, max_new_tokens, seed, 512), desc="sample")
    return sample_summary(items, [[o.text for o in os_] for os_ in outs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llama")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--probe-every", type=int, default=200)
    ap.add_argument("--probe-n", type=int, default=200, help="validation problems probed")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--set", action="append", default=[], help="a params override, e.g. models.llama.hidden=256")
    ap.add_argument("--world", default=str(ROOT / "data" / "world"), help="used when no world.* override is given")
    ap.add_argument("--out", required=True, help="JSON lines: one per probe, then a summary")
    ap.add_argument("--loss-on-prompt", action="store_true",
                    help="train on every token of the problem and its solution (as plain LM pretraining does), "
                         "not only on the solution")
    ap.add_argument("--save", default=None, help="directory to save the trained model in (safetensors)")
    ap.add_argument("--final-k", type=int, default=0, help="samples per problem of the final sampled evaluation "
                    "(0: none)")
    ap.add_argument("--final-n", type=int, default=100, help="problems per test tier of the final evaluation")
    a = ap.parse_args()
    setup_threads()
    overrides = [*a.set, f"++models.{a.model}.train.steps={a.steps}"]
    P = parse_params(compose(a.profile, ROOT / "conf", overrides), "capability")
    world = Path(a.world)
    if any(s.startswith("world.") for s in a.set):
        world = Path(tempfile.mkdtemp(prefix="capworld_"))
        make_world(P.world, P.seed, world)
    spec, cfg = P.model(a.model), P.train_params(a.model)
    tok = load_tokenizer(world / "tokenizer")
    examples, _ = pretrain_examples(load_split(world, "train"), tok, spec.dialect, spec.other_dialect_share, P.seed,
                                    a.model)
    if a.loss_on_prompt:
        examples = [Example(e.prompt_ids[:1], e.prompt_ids[1:] + e.target_ids) for e in examples]
    cfg = cfg.resolve(len(examples))
    model = build_model(spec, tok, P.seed)
    task = open_task(world)
    items = task.split_items("validation", range(a.probe_n))
    seen = task.train_items(range(a.probe_n))  # problems of the pretraining pool: the generalisation gap
    val_examples, _ = pretrain_examples(load_split(world, "validation").select(range(a.probe_n)), tok, spec.dialect,
                                        spec.other_dialect_share, P.seed, a.model)
    # the tokens that carry the reasoning: people's names and numbers (the rest is the dialect's wording)
    vocab = tok.get_vocab()
    content = torch.tensor(sorted(i for w, i in vocab.items() if w in NAMES or w.isdigit()))

    def content_ce(logits, targets, teacher_logits=None):
        return ce_loss(logits, targets) * torch.isin(targets, content)

    all_loss = lm_batch_loss(ce_loss, tok.pad_token_id, cfg.max_len)
    content_loss = lm_batch_loss(content_ce, tok.pad_token_id, cfg.max_len)
    n_content = sum(int(torch.isin(torch.tensor(e.target_ids), content).sum()) for e in val_examples)

    def mean_loss(m, exs, batch_loss=all_loss, n=None) -> float:
        """Summed loss over ``exs`` per target token (or per ``n`` tokens: the content tokens)."""
        with torch.no_grad():
            total, n_targets, _, _ = batch_loss(m, exs)
        return float(total) / (n or n_targets)

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = {"model": a.model, "overrides": overrides, "loss_on_prompt": a.loss_on_prompt,
            "non_embedding_params": n_non_embedding_params(model), "examples": len(examples), "world": str(world)}
    with open(out, "w") as f:
        f.write(json.dumps(head) + "\n")
    t0 = time.perf_counter()

    def on_log(step, m):
        r = {"step": step, "wall_s": round(time.perf_counter() - t0, 1),
             **probe(m, tok, items, P.eval.max_new_tokens),
             "train_acc": probe_accuracy(m, tok, seen, max_new_tokens=P.eval.max_new_tokens),
             "val_loss": mean_loss(m, val_examples),
             "val_content_loss": mean_loss(m, val_examples, content_loss, n_content),
             "train_loss": mean_loss(m, examples[:a.probe_n])}
        with open(out, "a") as f:
            f.write(json.dumps(r) + "\n")
        print(json.dumps(r), flush=True)
        return {"probe_acc": r["acc"]}

    stats = train(model, examples, cfg, pad_id=tok.pad_token_id, seed=P.seed, on_log=on_log,
                  eval_every=a.probe_every, desc=f"capability {a.model}")
    with open(out, "a") as f:
        f.write(json.dumps({"summary": stats}) + "\n")
    if a.final_k:
        t1 = time.perf_counter()
        ev = P.eval
        final = {t: sampled(model, tok, task.tier_items(t, a.final_n), a.final_k, ev.temperature, ev.max_new_tokens,
                            P.seed) for t in ev.tiers}
        final["validation"] = sampled(model, tok, items, a.final_k, ev.temperature, ev.max_new_tokens, P.seed)
        final["wall_s"] = round(time.perf_counter() - t1, 1)
        with open(out, "a") as f:
            f.write(json.dumps({"final": final}) + "\n")
        print(json.dumps({"final": final}), flush=True)
    if a.save:
        model.save_pretrained(a.save)
        tok.save_pretrained(a.save)


if __name__ == "__main__":
    main()
