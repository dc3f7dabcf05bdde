# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The Quality-Utility Paradox in the tiny world
#
# Five training sets on **the same problem ids**: the small model's own rejection-sampled traces
# (**SLM-RFT**), the oracle's minimal repair of them (**Oracle-Refined**), the oracle's own solutions
# (**Oracle-Synthesized**), the world's textbook solutions (**Reference**) and the oracle's repair that
# keeps the small model's style (**Style-Aligned**). *Perceived quality* is a reward model's mean score
# (95% bootstrap interval) and the verifier's step validity; *utility* is Avg@k (k samples at T=1.0)
# of the family's base model fine-tuned on the set with SFT and with DFT, mean ± sd over seeds, every
# set with the same budget. Nothing here is trained: the numbers come from the `paradox_*` stages.

# %% tags=["parameters"]
metrics_dir = "metrics/paradox"
score_dir = "data/paradox/score"
students_dir = "data/paradox/students"
families = ["qwen", "llama", "deepseek"]
objectives = ["sft", "dft"]
out_dir = "reports/paradox"

# %%
import json
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display
from reasonlab.report import save_table, save_figure
from reasonlab.paradox.tables import (LABELS, MEAN, PAPER_MODEL, QUARTERS, SETS, cost_table, format_main_table,
                                      load_family_metrics, main_table, ordering_checks, ordering_summary,
                                      paper_comparison, paradox_claim, paradox_claim_summary, rank_correlation,
                                      utilities_by_set)

score, finetune = load_family_metrics(metrics_dir, families)
k = next((m["k"] for m in finetune.values() if "k" in m), None)
df = main_table(score, finetune, objectives)
empty = df.empty
if empty:
    display(Markdown("**No data**: no family kept any problem in all five sets "
                     "(see the rejection-sampling and oracle sections below)."))

# %% [markdown]
# ## Main table: perceived quality vs utility

# %%
if not empty:
    save_table(df.drop(columns=[f"{o}_seeds" for o in objectives]), out_dir, "paradox_main")
    show = format_main_table(df, objectives, k)
    save_table(show, out_dir, "paradox_main_formatted")
    display(Markdown(show.to_markdown(index=False)))
    n = {f: score[f].get("n_ids", 0) for f in families}
    display(Markdown("Problems per set (identical ids in all five sets): " + ", ".join(f"{f} {v}" for f, v in n.items())
                     + f". Budget per student: " + ", ".join(f"{f} {finetune[f].get('steps')} steps" for f in families)
                     + ". Base models: " + ", ".join(f"{f} {100 * finetune[f]['base']['avg']:.1f}%" for f in families) + "."))
else:
    display(Markdown("_No data: no family kept a problem in all five sets._"))

# %% [markdown]
# ## Table 1 beside the paper's
#
# The paper's Table 1 (Qwen2.5-Math-1.5B, mean over five benchmarks, Avg@16; its Style-Aligned row from the
# mechanism table's frontier-oracle line, which has no SFT number) beside ours, for the `qwen` family (the
# paper's model's analogue) and averaged over families. Reward models, benchmarks and scales differ, so compare
# the ranks (1 = highest in the column; ranks on point estimates only: which differences are outside the noise
# is the next two sections' business).

# %%
for where in [f for f in ("qwen", MEAN) if not empty and f in set(df["family"])]:
    side = paper_comparison(df, where, objectives)
    save_table(side, out_dir, f"paper_table1_{where}")
    name = "averaged over families" if where == MEAN else f"family `{where}`"
    display(Markdown(f"**Ours: {name}** (Avg@{k}) **against the paper's {PAPER_MODEL}** (Avg@16)\n\n"
                     + side.to_markdown(index=False, floatfmt=".2f")))

# %% [markdown]
# ## Does the paradox hold?
#
# The paper's central claim: the oracle's sets score *higher* with the reward model, yet a student trained
# on them reasons *worse* than one trained on its own rejection-sampled traces. Checked against the
# least favourable oracle set (the lower-scored one for the RM, the better student for Avg@k); a
# difference is *clear* when it exceeds twice its standard error (RM: from the paired bootstrap over the
# same problems; Avg@k: paired over the same test problems and training seeds). The utility half is asked
# only where fine-tuning helps at all: a family whose SLM-RFT students do not beat their own base model by more
# than twice the standard error (paired) is **not testable here**, with that difference shown.

# %%
claim = paradox_claim(df, objectives)
save_table(claim, out_dir, "paradox_claim")
display(Markdown(paradox_claim_summary(claim, k)))
untestable = {f: v["not_testable"] for f in families
              if (v := json.loads((Path(metrics_dir) / "variants" / f"{f}.json").read_text())).get("not_testable")}
if untestable:
    display(Markdown("**Not testable here** (too few problems for a comparison; no student was trained):\n\n"
                     + "\n".join(f"- Family `{f}`: {why}" for f, why in untestable.items())))

# %% [markdown]
# ## Does the paper's full ordering hold?

# %%
checks = ordering_checks(df, objectives)
save_table(checks, out_dir, "paradox_ordering")
display(Markdown("The paper: RM score Oracle-Synthesized > Oracle-Refined > SLM-RFT, yet utility Style-Aligned > "
                 "SLM-RFT > Oracle-Refined > Oracle-Synthesized. Here (computed from the tables above):\n\n"
                 + ordering_summary(checks, k)))

# %% [markdown]
# ## Reward score against utility

# %%
if not empty:
    fams = [f for f in dict.fromkeys(df["family"]) if f != MEAN]
    marks = dict(zip(SETS, "os^Dv"))
    fig, axes = plt.subplots(1, len(objectives), figsize=(5 * len(objectives), 3.8), squeeze=False)
    for ax, o in zip(axes[0], objectives):
        for j, f in enumerate(fams):
            sub = df[df["family"] == f]
            for r in sub.itertuples():
                ax.errorbar(r.rm, getattr(r, f"{o}_avg"), yerr=getattr(r, f"{o}_sd"), xerr=[[r.rm - r.rm_lo], [r.rm_hi - r.rm]],
                            fmt=marks[r.set], color=f"C{j}", capsize=2, label=f"{f}: {r.label}")
        ax.set_xlabel("reward-model score (mean, 95% CI)")
        ax.set_ylabel(f"{o.upper()} Avg@{k} (%) (mean ± sd over seeds)")
        ax.set_title(f"Perceived quality vs utility ({o.upper()})")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][-1].legend(fontsize=6, frameon=False, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    display(Image(filename=save_figure(fig, out_dir, "rm_vs_utility")))
    corr = pd.concat([rank_correlation(df[df["family"] != MEAN], "rm", f"{o}_avg").assign(objective=o) for o in objectives])
    display(Markdown("Spearman correlation over the sets of RM score and Avg@k, per family:\n\n"
                     + corr.to_markdown(index=False, floatfmt=".2f")))
else:
    display(Markdown("_No data: no family kept a problem in all five sets._"))

# %% [markdown]
# ## Adaptation cost: how far each set is from the small model
#
# Perplexity of the family's *base* model on each set's solutions (globally and per quarter Q1-Q4 of each
# trace), the token-frequency distance from its own samples (total variation) and the share of symbolic
# tokens (`=`, `;`, `####`). The paper: higher perplexity goes with lower utility.

# %%
cost = cost_table(score, finetune, objectives)
if not cost.empty:
    save_table(cost, out_dir, "adaptation_cost")
    cols = ["family", "label", "ppl"] + [f"ppl_{q}" for q in QUARTERS] + ["tv_distance", "symbolic_share", "mean_tokens"] + [f"{o}_avg" for o in objectives]
    display(Markdown(cost[cols].to_markdown(index=False, floatfmt=".2f")))
    corr = pd.concat([rank_correlation(cost, "ppl", f"{o}_avg").assign(objective=o) for o in objectives])
    display(Markdown("Spearman correlation over the sets of base-model perplexity and Avg@k, per family "
                     "(negative: more drift, less utility):\n\n" + corr.to_markdown(index=False, floatfmt=".2f")))
else:
    display(Markdown("_No data: no scored sets._"))

# %%
if not cost.empty:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    for j, f in enumerate(dict.fromkeys(cost["family"])):
        sub = cost[cost["family"] == f]
        for r in sub.itertuples():
            ax.scatter(r.ppl, getattr(r, f"{objectives[0]}_avg"), marker="os^Dv"[SETS.index(r.set)], color=f"C{j}",
                       label=f"{f}: {r.label}")
    ax.set_xscale("log")
    ax.set_xlabel("base-model perplexity on the set (log)")
    ax.set_ylabel(f"{objectives[0].upper()} Avg@{k} (%)")
    ax.set_title("Adaptation cost vs utility")
    ax.legend(fontsize=6, frameon=False)
    ax = axes[1]
    q = cost.groupby("set", sort=False)[[f"ppl_{q}" for q in QUARTERS]].mean()
    for s in q.index:
        ax.plot(range(1, 5), q.loc[s].values, marker="o", label=LABELS[s])
    ax.set_xticks(range(1, 5), [q.upper() for q in QUARTERS])
    ax.set_yscale("log")
    ax.set_ylabel("perplexity (mean over families)")
    ax.set_title("Perplexity by quarter of the trace")
    ax.legend(fontsize=7, frameon=False)
    for a in axes:
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    display(Image(filename=save_figure(fig, out_dir, "adaptation_cost")))

# %% [markdown]
# ### Syntactic compaction: the tokens whose share changes most (vs the model's own samples)

# %%
rows = []
for f in families:
    p = Path(score_dir) / f / "analysis.json"
    sets = json.loads(p.read_text())["sets"] if p.exists() else {}
    for s in ("oracle_synth", "style_aligned"):
        for t in sets.get(s, {}).get("token_shift", {}).get("top", [])[:6]:
            rows.append({"family": f, "set": LABELS[s], "token": t["token"], "share (%)": 100 * t["share"],
                         "own samples (%)": 100 * t["ref_share"], "change (pts)": 100 * t["delta"]})
shift = pd.DataFrame(rows)
if not shift.empty:
    save_table(shift, out_dir, "token_shift")
    display(Markdown(shift.to_markdown(index=False, floatfmt=".1f")))
else:
    display(Markdown("_No data: no token-shift analysis of the oracle sets._"))

# %% [markdown]
# ## Both utilities: right answers and process validity
#
# Every student's (and the base model's) answer Avg@k beside the share of its sampled solutions that are *fully
# valid* (right answer and every step valid), from the per-sample results of the finetune stage; mean ± sd over
# training seeds, in %. Right answers at 4-5 steps mostly come from invalid derivations, so the two can disagree.

# %%
for f in families:
    p = Path(students_dir) / f / "per_problem.parquet"
    if not p.exists():
        display(Markdown(f"_Family `{f}`: no per-sample results (no students were trained)._"))
        continue
    u = utilities_by_set(pd.read_parquet(p))
    save_table(u, out_dir, f"utilities_{f}")
    cols = [c for c in u.columns if c not in ("set", "objective", "seeds") and not c.endswith(" sd")]
    show = u[["set", "objective"]].copy()
    for c in cols:
        show[c] = [f"{m:.1f} ± {sd:.1f}" for m, sd in zip(u[c], u[f"{c} sd"])]
    display(Markdown(f"**Family `{f}`**\n\n" + show.to_markdown(index=False)))

# %% [markdown]
# ## Per tier

# %%
rows = []
for f in families:
    p = Path(students_dir) / f / "students.json"
    if not p.exists():
        continue
    st = json.loads(p.read_text())
    for t in st["tiers"]:
        rows.append({"family": f, "set": "base model", "objective": "-", "tier": t, "Avg@k (%)": 100 * st["base"][t]["avg_at_k"], "sd": 0.0})
    recs = pd.DataFrame([{"set": r["set"], "objective": r["objective"], "seed": r["seed"],
                          **{t: 100 * r[t]["avg_at_k"] for t in st["tiers"]}} for r in st["students"]])
    if recs.empty:
        continue
    for (s, o), g in recs.groupby(["set", "objective"], sort=False):
        for t in st["tiers"]:
            rows.append({"family": f, "set": LABELS[s], "objective": o, "tier": t, "Avg@k (%)": g[t].mean(),
                         "sd": g[t].std(ddof=1) if len(g) > 1 else 0.0})
tiers = pd.DataFrame(rows)
if not tiers.empty:
    save_table(tiers, out_dir, "per_tier")
    wide = tiers.assign(v=[f"{a:.1f} ± {b:.1f}" for a, b in zip(tiers["Avg@k (%)"], tiers["sd"])]).pivot_table(
        index=["family", "set", "objective"], columns="tier", values="v", aggfunc="first", sort=False).reset_index()
    display(Markdown(wide.to_markdown(index=False)))
else:
    display(Markdown("_No data: no fine-tuned students._"))


# %% [markdown]
# ## How the sets were made

# %%
def show_table(df, name, intro, floatfmt):
    """Save ``df`` as table ``name`` and show it under ``intro`` (nothing when it is empty)."""
    if not df.empty:
        save_table(df, out_dir, name)
        display(Markdown(intro + "\n\n" + df.to_markdown(index=False, floatfmt=floatfmt)))


def read(p):
    p = Path(p)
    return json.loads(p.read_text()) if p.exists() else None

rows = []
for f in families:
    s, v = read(Path(metrics_dir) / "sample" / f"{f}.json"), read(Path(metrics_dir) / "variants" / f"{f}.json")
    if s is None or v is None:
        continue
    r = s["rft"]
    rows.append({"family": f, "problems": r["n_problems"], "samples": r["n_samples"], "pass rate (%)": 100 * r["pass_rate"],
                 "solvable": r["solvable"], "fully valid RFT traces (%)": 100 * r["valid_trace_fraction"],
                 "kept in all five sets": v["n_ids"], "oracle": v.get("proposer", "model"),
                 **{f"oracle {m} pass (%)": 100 * o["pass_rate"] for m, o in v["oracle"].items()}})
made = pd.DataFrame(rows)
if not made.empty:
    save_table(made, out_dir, "sets_made")
    display(Markdown(made.to_markdown(index=False, floatfmt=".1f")))
    if (made["oracle"] == "expert").any():
        display(Markdown("**oracle = expert: a stand-in for a frontier model.** The refined, synthesized and style-aligned "
                         "sets are written by the world's own solver (`paradox.oracle_run.proposer: expert`: it derives; "
                         "refine keeps the draft's valid steps and order in the oracle's form; style repairs only), not by "
                         "the learned oracle `models/oracle_modes`, which is one param away (`proposer: model`)."))
faith = []
for f in families:
    v = read(Path(metrics_dir) / "variants" / f"{f}.json")
    fa = (v or {}).get("faithfulness")
    if not fa:  # runs before faithfulness was recorded, or the paper world (no step parser)
        continue
    for m in ("refine", "style", "synth"):
        r = fa.get(m)
        if not r or not r["n"]:
            continue
        faith.append({"family": f, "mode": m, "verified outputs": r["n"],
                      "Kendall tau vs draft order": r["kendall_tau"], "same order (%)": None if r["same_order_share"] is None else 100 * r["same_order_share"],
                      "token edit distance / draft length": r["token_edit_distance"],
                      "in the draft's dialect (%)": 100 * r["draft_dialect_share"],
                      "dialects": ", ".join(f"{d} {100 * x:.0f}%" for d, x in r["dialects"].items()),
                      "refined differs from synth (%)": None if fa["refined_differs_share"] is None else 100 * fa["refined_differs_share"]})
show_table(pd.DataFrame(faith), "oracle_faithfulness",
           "**Faithfulness of the oracle's verified outputs to the drafts they rewrite** (the family's SLM-RFT "
           "trace; every problem where the mode verified, also those dropped for another mode). Refine and style "
           "should keep the draft's order (tau 1); style also its dialect; synth owes the draft nothing. If refined "
           "equalled synthesized on most problems, the two oracle sets would be one.", ".2f")
flaws = []
for f in families:
    r = (score.get(f) or {}).get("rft_traces")
    if not r or not r["n_correct"]:  # runs before the flaws were recorded, or no solvable problem
        continue
    flaws.append({"family": f, "RFT traces (right answer)": r["n_correct"],
                  "with an invalid step (%)": 100 * r["flawed_share"],
                  **{f"{k} (%)": 100 * v for k, v in r["by_kind"].items()}})
show_table(pd.DataFrame(flaws), "rft_flaws",
           "**Flaws behind right answers**: every chosen SLM-RFT trace (one per solvable problem) has the right "
           "answer; this is the share that still has an invalid step, by the kind of the first failing check of a "
           "step (`unparsed`, `arithmetic`, `quantity`, `form`, `order`: an input never stated before, `unneeded`: a "
           "distractor), a needed quantity never stated (`missing`) or no step at all (`no_steps`); a trace can have "
           "several. A repair by the oracle can only matter where this is above zero.", ".1f")
om = read(Path(metrics_dir) / "oracle_modes.json")
if om and "held_out" in om:
    ho = om["held_out"]
    display(Markdown(f"Oracle modes: {om.get('n_examples')} training examples, {om.get('steps')} steps, on "
                     f"{ho.get('n')} held-out problems with fresh drafts (verified: right answer, every step valid; "
                     "style: also in the draft's dialect)."))
    rows = []
    for m in ("synth", "refine", "style"):
        if m not in ho:
            continue
        r = ho[m]
        row = {"mode": m, "first try (%)": 100 * r["pass_rate"]}
        if "pass_ci" in r:  # runs before the interval and the retries were recorded have the first try only
            row["95% CI"] = f"[{100 * r['pass_ci'][0]:.0f}, {100 * r['pass_ci'][1]:.0f}]"
            row[f"after {r['max_retries']} retries (%)"] = 100 * r["retried_pass_rate"]
            row.update({f"draft {k} (%)": 100 * v["pass_rate"] for k, v in r["by_kind"].items()})
            row.update({f"{k} steps (%)": 100 * v["pass_rate"] for k, v in r["by_steps"].items()})
        rows.append(row)
    modes_df = pd.DataFrame(rows)
    save_table(modes_df, out_dir, "oracle_modes_held_out")
    display(Markdown(modes_df.to_markdown(index=False, floatfmt=".0f")))

# %% [markdown]
# ## The reward model

# %%
rm = read(Path(metrics_dir) / "reward_model.json")
if rm and "cross_dialect_share" in rm.get("pool", {}):
    pool = rm["pool"]
    req = pool["requested"]
    comp = pd.DataFrame([{"dialect": d, "chosen (%)": 100 * pool["dialects"]["chosen"][d],
                          "rejected (%)": 100 * pool["dialects"]["rejected"][d],
                          **{f"rejected {k} (%)": 100 * v for k, v in pool["rejected_kinds"][d].items()}}
                         for d in pool["dialects"]["chosen"]])
    save_table(comp, out_dir, "reward_pool")
    acc = pd.DataFrame([{"held-out pairs": f"{label} {key}", "n": g["n"], "accuracy (%)": 100 * g["accuracy"],
                         "95% CI": f"[{100 * g['ci95'][0]:.0f}, {100 * g['ci95'][1]:.0f}]"}
                        for label, group in (("within", "within_dialect_acc"), ("chosen", "cross_dialect_acc"),
                                             ("rejected is", "heldout_by_rejected_kind"))
                        for key, g in (rm.get(group) or {}).items()])
    save_table(acc, out_dir, "reward_model_accuracy")
    held = (f"{100 * rm['heldout_accuracy']:.1f}% [{100 * rm['heldout_ci95'][0]:.0f}, "
            f"{100 * rm['heldout_ci95'][1]:.0f}] on {rm['heldout_pairs']} pairs" if rm.get("heldout_accuracy") is not None
            else "n/a")
    display(Markdown(
        f"{pool['n_pairs']} pairs on {pool['n_problems']} problems (disjoint from the sets' problems). Chosen answers "
        f"are in the oracle's dialect {100 * req['chosen_oracle_share']:.0f}% of the time, rejected ones "
        f"{100 * req['rejected_oracle_share']:.0f}%; {100 * pool['cross_dialect_share']:.0f}% of the pairs cross "
        f"dialects. A scorer that reads only the dialect (fit on the training pairs) gets "
        + (f"{100 * rm['dialect_detector_acc']:.1f}%" if rm.get("dialect_detector_acc") is not None else "n/a")
        + " of the held-out pairs (`dialect_detector_acc`; 50% means the pool teaches no dialect preference). "
        f"The reward model: train {100 * rm['train_accuracy']:.1f}%, held out {held}.\n\n"
        + comp.to_markdown(index=False, floatfmt=".1f") + "\n\n" + acc.to_markdown(index=False, floatfmt=".1f")))
elif rm:
    display(Markdown("The reward model's metrics predate the dialect-balanced pool: rerun `dvc repro "
                     "paradox_reward_model`."))

# %% [markdown]
# ## Robustness grid
#
# The fine-tuning learning rate x batch size grid runs as DVC experiments (only `paradox_finetune@*`
# re-runs): `python -m reasonlab.paradox.grid` prints the `dvc exp run --queue` commands,
# `dvc queue start` runs them and `dvc exp show --only-changed` compares them.
