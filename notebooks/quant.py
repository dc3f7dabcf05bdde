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
# # Low-bit QAT for reasoning models (paper B, RQ1 and RQ2) in the tiny world
#
# Full-precision reasoners (two sizes of one Qwen3-architecture family) are quantized to 4, 3 and 2 bit weights
# (group-wise integers, llm-compressor) by post-training quantization (**RTN**, **GPTQ**, **AWQ**) and by
# quantization-aware training (**QAT**) on verified traces of a configurable source (the reasoner's own samples,
# the oracle's, the reference solutions).
#
# * **RQ1, the objective**: QAT with the SFT loss (cross-entropy on the traces) vs knowledge distillation (KD)
#   from the full-precision model, both started from GPTQ, at every bit width, per training-data source, over
#   several seeds, each QAT-SFT run with a full-precision control trained the same way.
# * **RQ2, the initialisation**: QAT started from RTN, GPTQ or AWQ (the plain full-precision weights with
#   min-max scales are RTN's grid at step 0, so not a distinct condition), for both objectives, at the ablation's
#   bit width, with accuracy-vs-step curves on the validation split.
# * **2-bit recovery**, the **paper's figures beside ours** and the **on-disk size** of the packed checkpoints.
#
# **Avg@k** is the mean share of k samples at temperature T that are correct (the papers' Avg@16 at T=1.0);
# every model is evaluated with the same problems, k and sampling seeds. Spreads are sample standard
# deviations over QAT seeds. Nothing here trains: the numbers come from the `quant_*` DVC stages.

# %% tags=["parameters"]
metrics_dir = "metrics/quant"
plots_dir = "plots/quant"
reasoners = None  # the grid of params.yaml (None: every metrics file)
bits = None
out_dir = "reports/quant"

# %%
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display
from reasonlab.report import save_table, save_figure
from reasonlab.quant.tables import (load_results, results_frame, rq1_table, display_rq1, rq1_sources_table, rq2_claims_table,
                                    rq2_table,
                                    load_curves,
                                    convergence_table, recovery_table, size_table, findings, fmt_mean_sd,
                                    MIN_FP)
from reasonlab.quant.paper import paper_comparison

res = load_results(metrics_dir, reasoners, bits)
df = results_frame(res)
curves = load_curves(plots_dir, reasoners, bits)
k = int(df["k"].dropna().iloc[0])
save_table(df, out_dir, "all_models")

# %% [markdown]
# ## Training data: self-generated traces

# %%
tr = pd.DataFrame([{"reasoner": r, "problems": t["n_problems"], "samples": t["n_samples"],
                    "sample pass rate (%)": 100 * t["pass_rate"], "solved problems (%)": 100 * t["solvable_fraction"],
                    "traces kept": t["n_traces"], "reference fallbacks": t.get("n_reference_fallback", 0),
                    "mean trace tokens": t["mean_trace_tokens"]} for r, t in res["traces"].items()])
if len(tr):
    save_table(tr, out_dir, "traces")
    display(Markdown(tr.to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ## RQ1: QAT objective (SFT vs KD)
#
# One block per reasoner and bit width: the full-precision reference, the three PTQ baselines, and QAT with
# each objective from the GPTQ initialisation (mean ± s.d. over seeds; `n` = seeds).

# %%
t1 = rq1_table(df)
save_table(t1, out_dir, "rq1_objective")
shown = display_rq1(t1, k)
for (reasoner, bits), block in shown.groupby(["reasoner", "bits"], sort=False):
    display(Markdown(f"**{reasoner}, {bits}**"))
    display(Markdown(block.drop(columns=["reasoner", "bits"]).to_markdown(index=False, floatfmt=".1f")))

# %%
blocks = t1[t1.method != "FP"]
reasoners = list(dict.fromkeys(blocks.reasoner))
fig, axes = plt.subplots(1, len(reasoners), figsize=(5.2 * len(reasoners), 3.6), squeeze=False)
methods = [m for m in ("RTN", "GPTQ", "AWQ", "QAT-SFT", "QAT-KD") if m in set(blocks.method)]
for ax, reasoner in zip(axes[0], reasoners):
    sub = blocks[blocks.reasoner == reasoner]
    bits = sorted(set(sub.bits), reverse=True)
    w = 0.8 / len(methods)
    for j, m in enumerate(methods):
        s = sub[sub.method == m].set_index("bits").reindex(bits)
        ax.bar(np.arange(len(bits)) + (j - (len(methods) - 1) / 2) * w, s["mean"], w,
               yerr=s["mean_sd"], capsize=2, label=m)
    fp = t1[(t1.reasoner == reasoner) & (t1.method == "FP")]["mean"]
    if len(fp):
        ax.axhline(fp.iloc[0], color="k", ls="--", lw=1, label="FP")
    ax.set_xticks(np.arange(len(bits)), [f"W{b}" for b in bits])
    ax.set_title(reasoner)
    ax.set_ylabel(f"Avg@{k}, mean over tiers (%)")
    ax.spines[["top", "right"]].set_visible(False)
axes[0][-1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
display(Image(filename=save_figure(fig, out_dir, "rq1_objective")))

# %% [markdown]
# ### RQ1 per training-data source, against full-precision controls
#
# The paper trains QAT-SFT on a *stronger* model's traces, so SFT pays a shift of distribution that KD (the
# FP model's own token distributions) avoids. Here every source has the same problems and count: `self` (the
# reasoner's verified samples: rejection-sampling fine-tuning), `oracle` (the same problems' solutions in the
# oracle's dialect and step order), `reference` (the world's reference solutions). Each QAT-SFT run has an FP
# control (the FP model fine-tuned on the same data, objective, budget and seed); QAT-KD's control is the FP
# model. Differences in points, paired over test problems and seeds (95% bootstrap). "KD beats SFT" holds when
# its interval lies above 0; it is falsified (`opposite`) when it lies below; it is not testable where the GPTQ
# init loses nothing against FP (`init - FP` interval reaching 0): there is nothing to recover.

# %%
t1s = rq1_sources_table(res)
if t1s.empty:
    display(Markdown("_No per-source statistics in these metrics (stages run before they existed)._"))
else:
    save_table(t1s, out_dir, "rq1_sources")
    shown = t1s.assign(bits=[f"W{b}" for b in t1s.bits])
    display(Markdown(shown.to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ## RQ2: QAT initialisation
#
# QAT from each PTQ init (RTN, GPTQ, AWQ; `fp`, min-max scales, is RTN's grid at step 0 and is left out by
# default) with each objective, after the same number of steps. `ptq` is the Avg@k of the initial quantized model,
# `probe` columns the probe accuracy on the validation split (never a test tier; the same sampling seed at every
# step) at step 0 and at the end.

# %%
t2 = rq2_table(df)
if t2.empty:
    display(Markdown("_No RQ2 runs in these results._"))
else:
    save_table(t2, out_dir, "rq2_init")
    show = t2.assign(**{f"Avg@{k} mean": [fmt_mean_sd(m, s) for m, s in zip(t2["mean"], t2["mean_sd"])]})
    for reasoner, block in show.groupby("reasoner", sort=False):
        piv = block.pivot(index="init", columns="objective", values=f"Avg@{k} mean").reindex(
            [i for i in ("fp", "rtn", "gptq", "awq") if i in set(block.init)])
        display(Markdown(f"**{reasoner}, W{int(block.bits.iloc[0])}: Avg@{k} after the QAT budget**"))
        display(Markdown(piv.to_markdown(floatfmt=".1f")))
        display(Markdown(block[["init", "objective", "n", "ptq", "probe_init", "probe_final"]]
                         .to_markdown(index=False, floatfmt=".1f")))

# %%
if not t2.empty and not curves.empty:
    cur = curves[curves.bits == int(t2.bits.iloc[0])]
    cur = cur[cur.reasoner.isin(set(t2.reasoner))]
    panels = list(cur.groupby(["reasoner", "objective"], sort=True).groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, (reasoner, objective) in zip(axes[0], panels):
        sub = cur[(cur.reasoner == reasoner) & (cur.objective == objective)]
        for init in [i for i in ("fp", "rtn", "gptq", "awq") if i in set(sub.init)]:
            c = sub[sub.init == init].groupby("step")["probe_acc"].mean()
            ax.plot(c.index, 100 * c.values, marker="o", ms=3, label=f"init {init}")
        ax.set_title(f"{reasoner}, QAT-{objective.upper()}, W{int(t2.bits.iloc[0])}")
        ax.set_xlabel("QAT step")
        top = max(ax.get_ylim()[1], 1.0)
        ax.set_ylim(-0.03 * top, top)  # from 0 (a curve at 0 stays visible above the axis)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("probe Avg@k (%)")
    axes[0][-1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    display(Image(filename=save_figure(fig, out_dir, "rq2_curves")))
    conv = convergence_table(cur)
    save_table(conv, out_dir, "rq2_convergence")
    display(Markdown("Convergence (probe Avg@k, %; `area_after_0` = mean accuracy over the probed steps after "
                     "step 0; `steps_to_90` = first step reaching 90% of the curve's own final value):"))
    display(Markdown(conv.to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ### RQ2 verdicts: each init against RTN
#
# Paired over validation-probe problems and seeds (converges faster: the curve's area after step 0, so a higher
# start alone does not win) and over test problems and seeds (ends higher: after the fixed budget), in points.
# `rise_diff`: how much more the init's curve rose above its own start than RTN's; a faster convergence with an
# equal rise is the init's head start carried through the budget, not faster learning. A claim holds when its
# interval lies above 0; it is "not testable here" when neither init starts below the FP control (KD: the FP
# model; SFT: the FP model fine-tuned on the same data) by 2 standard errors. `reached`: seeds whose curve reaches
# 90% of the control's probe accuracy within the budget.

# %%
t2c = rq2_claims_table(res)
if t2c.empty:
    display(Markdown("_No RQ2 statistics in these metrics (stages run before they existed)._"))
else:
    save_table(t2c, out_dir, "rq2_claims")
    display(Markdown(t2c.assign(bits=[f"W{b}" for b in t2c.bits]).to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ## Low-bit recovery

# %%
rec = recovery_table(df)
save_table(rec, out_dir, "recovery")
shown = rec.astype(object).where(rec.notna(), None)  # NaN -> n/a
display(Markdown(shown.to_markdown(index=False, floatfmt=".2f", missingval="n/a")))
if rec.isna().any(axis=None):
    display(Markdown("_n/a_: nothing to recover (the best PTQ model lost nothing against FP) "
                     "or no QAT run at this width."))
bits = int(rec.bits.iloc[0])
low = t1[(t1.bits == bits) | (t1.method == "FP")]
fig, ax = plt.subplots(figsize=(1.8 + 2.6 * low.reasoner.nunique(), 3.6))
rs = list(dict.fromkeys(low.reasoner))
ms = [m for m in ("FP", "RTN", "GPTQ", "AWQ", "QAT-SFT", "QAT-KD") if m in set(low.method)]
w = 0.8 / len(ms)
for j, m in enumerate(ms):
    s = low[low.method == m].drop_duplicates("reasoner").set_index("reasoner").reindex(rs)
    ax.bar(np.arange(len(rs)) + (j - (len(ms) - 1) / 2) * w, s["mean"], w, yerr=s["mean_sd"],
           capsize=2, label=m if m == "FP" else f"{m} W{bits}")
ax.set_xticks(np.arange(len(rs)), rs)
ax.set_ylabel(f"Avg@{k}, mean over tiers (%)")
ax.set_title(f"W{bits}: PTQ vs QAT (FP for reference)")
ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.spines[["top", "right"]].set_visible(False)
fig.tight_layout()
display(Image(filename=save_figure(fig, out_dir, "low_bit_recovery")))

# %% [markdown]
# ## Paper B's figures beside ours
#
# The paper's models and benchmarks are not ours, and its only figures the design card has are **unverified**
# (third-party notes, partly inconsistent), so absolute accuracies are not compared: only scale-free quantities
# (shares of FP accuracy, shares of the GPTQ loss won back) and the sign and size of KD - SFT. Ours are read
# from the paired statistics above (test problems x seeds; a recovery share only where the GPTQ init loses
# accuracy beyond its interval). A share of ours far below the paper's is a result, not a defect: it says how
# much a tiny model's low-bit loss QAT wins back within our budget.

# %%
pc = paper_comparison(res)
save_table(pc, out_dir, "paper_vs_ours")
display(Markdown(pc.astype(object).where(pc.notna(), None).to_markdown(index=False, floatfmt=".1f", missingval="–")))

# %% [markdown]
# ## On-disk size of the packed checkpoints

# %%
sz = size_table(df)
save_table(sz, out_dir, "sizes")
display(Markdown(sz.to_markdown(index=False, floatfmt=".1f")))
display(Markdown("Weights are stored as packed integers (compressed-tensors `pack-quantized`) with one fp scale and "
                 "zero-point per group; embeddings and `lm_head` stay in full precision (FP32 here), which bounds "
                 "the compression of these tiny models."))

# %% [markdown]
# ## Which of the paper's findings hold here

# %%
fd = findings(df, curves, results=res)
save_table(fd, out_dir, "findings")
display(Markdown(fd.to_markdown(index=False)))
held = fd[fd.holds == "yes"].finding.tolist()
part = fd[fd.holds == "partly"].finding.tolist()
not_ = fd[fd.holds == "no"].finding.tolist()
untestable = fd[fd.holds == "not testable here"].finding.tolist()
lines = [f"**Hold** ({len(held)}): " + ("; ".join(held) or "none") + ".",
         f"**Partly** ({len(part)}): " + ("; ".join(part) or "none") + ".",
         f"**Do not hold** ({len(not_)}): " + ("; ".join(not_) or "none") + ".",
         f"**Not testable here** ({len(untestable)}): " + ("; ".join(untestable) or "none")
         + f". Precondition of the point comparisons (PTQ collapse, GPTQ vs RTN, recovery): the FP reasoner's Avg@k "
         f"(tier mean) reaches {MIN_FP:.0f} points; below it FP, PTQ and QAT differ by sampling noise near the floor. "
         "RQ1 and RQ2 are read from paired intervals instead, each with its own precondition (the tables above)."]
display(Markdown("\n\n".join(lines)))
