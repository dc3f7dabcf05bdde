"""Why fine-tuning a family on its own correct traces does not help it (issue 24 item 1; a study, not a stage).

In every run so far the paradox's students ended at or below their base model, so "which data helps most" had no
footing. This script fine-tunes one family's base model as ``paradox_finetune`` does (the same loop, loss and
schedule), under a grid of what might be the cause, and measures every student against its base model on the
*validation* split (selection never touches the test tiers), paired over problems and training seeds
(:func:`reasonlab.stats.paired_diff`): answer Avg@k and the share of fully valid solutions (process validity).

What varies (``--data``, ``--lr``, ``--epochs``, ``--seeds``):

* ``rft22``  the stage's SLM-RFT set today: one correct-answer trace per problem, on the ids that survive into
  all five sets only (read from ``data/paradox/variants/<family>/slm_rft``);
* ``rft``    the same rule on every SLM-solvable problem (the chosen trace of ``data/paradox/samples``);
* ``valid``  one *fully valid* sample per problem (correct answer and every step valid), where a problem has one:
  does filtering by the answer alone keep too many lucky guesses?
* ``all``    every distinct correct-answer sample of every problem (up to ``paradox.sample.n``);
* ``canon``  a diagnostic, not a paradox set: the world's own valid solution in the family's dialect for every
  RFT-role problem, solvable or not (what pretraining showed, on problems it never showed): if even this does
  not move the base model, no set of the family's own traces can, and the cause is the base model, not the data;

and the budget (epochs over the set, peak lr). It reads a finished tiny run (``--repo``: its ``models/``,
``data/world`` and ``data/paradox``) and the params of that repo.

    python benchmarks/students.py --repo /tmp/cc6 --family qwen --data rft --lr 1e-4 3e-4 1e-3 --epochs 1 3 10 \\
        --seeds 0 1 --out benchmarks/students/qwen.jsonl
    python benchmarks/students.py --summary benchmarks/students/qwen.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from reasonlab.checkpoint import digest
from reasonlab.evaluate import evaluate_tier
from reasonlab.io import setup_threads
from reasonlab.models.data import sft_example
from reasonlab.models.losses import objective_loss
from reasonlab.models.train import train
from reasonlab.models.zoo import load_lm
from reasonlab.paradox.config import ParadoxParams
from reasonlab.paradox.rejection import rejection_sample, save_rft
from reasonlab.paradox.roles import role_items
from reasonlab.paradox.variants import load_variants
from reasonlab.params import load_params
from reasonlab.stats import paired_diff
from reasonlab.world.tasks import open_task

DATA = ("rft22", "rft", "valid", "all", "canon")


def training_pairs(repo: Path, P: ParadoxParams, family: str, data: str,
                   samples: Path | None = None) -> list[tuple[str, str]]:
    """``(prompt, solution)`` pairs of one training set (see the module's list); ``samples``: an ``rft.json``
    of more problems than the stage's (:func:`more_samples`)."""
    pc = P.paradox
    if data == "canon":
        task = open_task(repo / "data/world")
        dialect = P.model(family).dialect
        return [(it.prompt, task.solution(it, dialect))
                for it in role_items(task, "rft", pc.problems.rft if samples is None else
                                     len(json.loads(samples.read_text())["samples"]), pc.problems.seed)]
    if data == "rft22":
        ds = load_variants(repo / "data/paradox/variants" / family)["slm_rft"]
        return list(zip(ds["prompt"], ds["solution"]))
    rft = json.loads((samples or repo / "data/paradox/samples" / family / "rft.json").read_text())
    items = {it.pid: it for it in role_items(open_task(repo / "data/world"), "rft", len(rft["samples"]),
                                             pc.problems.seed)}
    out = []
    for pid, samples in rft["samples"].items():
        prompt = items[pid].prompt
        if data == "rft":
            if pid in rft["traces"]:
                out.append((prompt, rft["traces"][pid]["text"]))
        elif data == "valid":
            ok = [s["text"] for s in samples if s["reason"] is None and s["all_valid"]]
            if ok:
                out.append((prompt, ok[0]))
        elif data == "all":
            seen = dict.fromkeys(s["text"] for s in samples if s["reason"] is None and s["correct"])
            out += [(prompt, t) for t in seen]
        else:
            raise ValueError(f"--data must be one of {DATA}, got {data!r}")
    return out


def more_samples(repo: Path, P: ParadoxParams, family: str, model_dir: Path, model, tok, n_problems: int,
                 cache: Path) -> Path:
    """Rejection-sample the first ``n_problems`` of the RFT role as the ``paradox_sample`` stage does (the stage's
    first ``paradox.problems.rft`` of them get the same samples: per-problem random streams), cached in ``cache``."""
    path = cache / f"rft_{family}_{digest(model_dir)[:12]}_{n_problems}.json"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        pc, sc = P.paradox, P.paradox.sample
        res = rejection_sample(model, tok, role_items(open_task(repo / "data/world"), "rft", n_problems,
                                                      pc.problems.seed),
                               n=sc.n, temperature=sc.temperature, top_p=sc.top_p, seed=P.seed,
                               max_new_tokens=sc.max_new_tokens, batch_size=sc.batch_size)
        save_rft(res, path)
    return path


def per_problem(model, tok, items, k: int, max_new_tokens: int, seed: int) -> dict:
    """Per-problem answer Avg@k and share of fully valid samples (common random numbers: one sampling seed)."""
    m, recs = evaluate_tier(model, tok, items, k=k, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens,
                            batch_size=256, seed=seed, tier="validation")
    idx = {it.pid: i for i, it in enumerate(items)}
    acc, valid = np.zeros(len(items)), np.zeros(len(items))
    for r in recs:
        if not r["greedy"]:
            acc[idx[r["pid"]]] += r["correct"] / k
            valid[idx[r["pid"]]] += (r["correct"] and r["step_validity"] == 1.0) / k
    return {"acc": acc.tolist(), "valid": valid.tolist(), "greedy": m["greedy"], "mean_len": m["mean_len_tokens"]}


def run(a) -> None:
    setup_threads()
    repo = Path(a.repo)
    P = load_params(repo / "params.yaml", ParadoxParams)
    base, tok = load_lm(a.base or repo / "models" / a.family)
    items = open_task(repo / "data/world").split_items("validation", range(a.n_eval))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {(r["data"], r["n_examples"], r["lr"], r["epochs"], r["seed"], r.get("objective", "sft"))
                for r in map(json.loads, out.read_text().splitlines()) if r.get("kind") == "student"}
    if not out.exists() or not any(json.loads(x).get("kind") == "base" for x in out.read_text().splitlines()):
        b = per_problem(base, tok, items, a.k, a.max_new_tokens, a.eval_seed)
        with open(out, "a") as f:
            f.write(json.dumps({"kind": "base", "family": a.family, "n_eval": a.n_eval, "k": a.k, **b}) + "\n")
    ft = P.paradox.finetune.train
    base_dir = Path(a.base or repo / "models" / a.family)
    samples = (more_samples(repo, P, a.family, base_dir, base, tok, a.rft_problems, out.parent / "samples_cache")
               if a.rft_problems else None)
    for data in a.data:
        pairs = training_pairs(repo, P, a.family, data, samples)
        if a.max_steps:
            n_role = len(json.loads(samples.read_text())["samples"]) if samples else P.paradox.problems.rft
            steps = {it.prompt: it.problem.steps for it in role_items(open_task(repo / "data/world"), "rft", n_role,
                                                                      P.paradox.problems.seed)}
            pairs = [(p, s) for p, s in pairs if steps[p] <= a.max_steps]
        if a.max_problems:
            prompts = list(dict.fromkeys(p for p, _ in pairs))[: a.max_problems]
            keep = set(prompts)
            pairs = [(p, s) for p, s in pairs if p in keep]
        examples = [sft_example(tok, p, s) for p, s in pairs]
        label = data + (f"_max{a.max_steps}steps" if a.max_steps else "")
        if not examples:
            print(f"{data}: no training examples for {a.family}; skipped")
            continue
        for lr in a.lr:
            for ep in a.epochs:
                cfg = ft.model_copy(update={"lr": lr, "epochs": ep}).resolve(len(examples))
                for seed in a.seeds:
                    if (label, len(examples), lr, ep, seed, a.objective) in done:
                        continue
                    t0 = time.perf_counter()
                    student = copy.deepcopy(base)
                    stats = train(student, examples, cfg, pad_id=tok.pad_token_id, seed=seed,
                                  loss_fn=objective_loss(a.objective), desc=f"{data} lr={lr} ep={ep} s{seed}")
                    student.eval()
                    r = per_problem(student, tok, items, a.k, a.max_new_tokens, a.eval_seed)
                    rec = {"kind": "student", "family": a.family, "data": label, "n_examples": len(examples),
                           "lr": lr, "epochs": ep, "steps": cfg.steps, "seed": seed, "objective": a.objective,
                           "final_loss": stats.get("final_loss"), "wall_s": time.perf_counter() - t0, **r}
                    with open(out, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    print(f"{data:6s} n={len(examples):4d} lr={lr:g} ep={ep:g} steps={cfg.steps:4d} s{seed}: "
                          f"acc {np.mean(r['acc']):.3f} valid {np.mean(r['valid']):.3f} ({rec['wall_s']:.0f} s)")


def summary(path: Path) -> str:
    """Markdown table: every condition's paired difference from the base model, seeds pooled."""
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    base = next(r for r in recs if r["kind"] == "base")
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        if r["kind"] == "student":
            groups.setdefault((r["data"], r.get("objective", "sft"), r["n_examples"], r["lr"], r["epochs"], r["steps"]),
                              []).append(r)
    lines = [f"{base['family']}: base Avg@{base['k']} {100 * np.mean(base['acc']):.1f}, fully valid "
             f"{100 * np.mean(base['valid']):.1f} ({base['n_eval']} validation problems)", "",
             "| data | objective | examples | lr | epochs | steps | seeds | Avg@k - base (points) "
             "| fully valid - base |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (data, obj, n, lr, ep, steps), rs in sorted(groups.items(),
                                                   key=lambda kv: (DATA.index(kv[0][0].split("_")[0]), kv[0])):
        cells = []
        for key in ("acc", "valid"):
            d = paired_diff(np.array([r[key] for r in rs]), np.array(base[key]))
            cells.append(f"{100 * d['mean']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]")
        lines.append(f"| {data} | {obj} | {n} | {lr:g} | {ep:g} | {steps} | {len(rs)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=".", help="a repo whose tiny run has finished (models/, data/)")
    ap.add_argument("--family", default="qwen")
    ap.add_argument("--data", nargs="+", default=["rft"], choices=DATA)
    ap.add_argument("--lr", nargs="+", type=float, default=[3e-4])
    ap.add_argument("--epochs", nargs="+", type=float, default=[1.0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--base", default=None, help="the base model's directory (default: the repo's family model); "
                    "its own samples need --rft-problems")
    ap.add_argument("--rft-problems", type=int, default=None,
                    help="rejection-sample this many RFT-role problems afresh (default: the stage's samples)")
    ap.add_argument("--objective", default="sft", choices=["sft", "dft"])
    ap.add_argument("--max-steps", type=int, default=None,
                    help="train on problems of at most this many steps only (the stage's five-set ids are 2-3 steps)")
    ap.add_argument("--max-problems", type=int, default=None,
                    help="train on the set's first N problems only (the stage's sets hold about 200)")
    ap.add_argument("--n-eval", type=int, default=300, help="validation problems")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--eval-seed", type=int, default=0)
    ap.add_argument("--out", help="JSON lines, appended to (finished conditions are skipped)")
    ap.add_argument("--summary", help="print the table of a results file and exit")
    a = ap.parse_args()
    if a.summary:
        print(summary(Path(a.summary)))
        return
    if not a.out:
        ap.error("--out is required unless --summary")
    if a.base and (not a.rft_problems or {"rft22"} & set(a.data)):
        ap.error("--base: the repo's samples and sets are the family model's; give --rft-problems, and no rft22")
    run(a)


if __name__ == "__main__":
    main()
