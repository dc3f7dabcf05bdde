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
# # 2-bit recovery (paper B's headline) in the tiny world
#
# Paper B: PTQ breaks 2-bit reasoning models (R1-Distill-1.5B, MATH-500: BF16 84.4, GPTQ 3.67) and QAT brings them
# back (55.0); these figures are third-party notes, **unverified** (docs/design.md). Here, per reasoner at the width
# `quant.two_bit.bits` (2 by default; group-wise integers, the `quant` section's group size): the FP model, its FP control (the FP model fine-tuned on the same
# traces, objective SFT, same budget and seeds), RTN / GPTQ / AWQ, and QAT with a recipe fixed before any result was
# read (`quant.two_bit`: KD from the FP model, GPTQ init, the reasoner's own verified traces: RQ1's objective, RQ2's init, RQ4's
# aligned domain), over seeds. Every model is sampled on the same test problems with the same seed, so the shares
# and fractions below are paired over problems and seeds (95% bootstrap). Nothing here trains: the numbers come
# from the `quant_w2` stages, which read the `quant_qat@<reasoner>-<bits>` results.

# %% tags=["parameters"]
metrics_dir = "metrics/quant/two_bit"
data_dir = "data/quant/two_bit"
reasoners = None  # params.yaml's quant.reasoners (None: every metrics file)
out_dir = "reports/two_bit"

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
from reasonlab.quant.paper import PAPER_B, PAPER_B_SOURCE
from reasonlab.quant.two_bit import BREAK_SHARE, RECOVER_SHARE, two_bit_claims

names = reasoners or sorted(p.stem for p in Path(metrics_dir).glob("*.json"))
M = {r: json.loads((Path(metrics_dir) / f"{r}.json").read_text()) for r in names}
D = {r: json.loads((Path(data_dir) / f"{r}.json").read_text()) for r in names}
order = sorted(names, key=lambda r: M[r]["fp_params"])  # smallest first
def ci(d, s=1.0):
    n = 1 if s == 100 else 2
    return f"{s * d['mean']:.{n}f} [{s * d['ci95'][0]:.{n}f}, {s * d['ci95'][1]:.{n}f}]"


pts = lambda d: f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]"
k = M[order[0]]["k"]
widths = {M[r]["bits"] for r in order}
if len(widths) != 1:
    raise ValueError(f"{metrics_dir}: the reasoners' results are at different bit widths {sorted(widths)}")
bits = widths.pop()
W = f"W{bits}"
display(Markdown(f"**Bit width: {W}** (`quant.two_bit.bits`), group size {M[order[0]]['group_size']}."))

# %% [markdown]
# ## The table (Avg@k per tier, %)
#
# `n`: models averaged (seeds). RTN and AWQ come from the PTQ stage (one model each); GPTQ is the QAT init.

# %%
rows = []
for r in order:
    for row in M[r]["table"]:
        rows.append({"reasoner": r, **row})
tab = pd.DataFrame(rows)
save_table(tab, out_dir, "w2_table")
for r, block in tab.groupby("reasoner", sort=False):
    display(Markdown(f"**{r}** ({M[r]['fp_params']:,} parameters; recipe: QAT-{M[r]['objective'].upper()} from "
                     f"{M[r]['init'].upper()}, source `{M[r]['source']}`, seeds {M[r]['seeds']}; Avg@{k})"))
    display(Markdown(block.drop(columns=["reasoner"]).to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ## What PTQ keeps, what QAT wins back
#
# *Kept share*: the model's accuracy over the FP model's on the same problems. *Recovered fraction*:
# (QAT - GPTQ) / (reference - GPTQ), the share of GPTQ's loss QAT wins back; the reference is QAT's control (KD: the
# FP model; SFT: its FP control). It is undefined where GPTQ loses nothing measurable against the reference.

# %%
rec_rows = []
for r in order:
    m = M[r]
    for obj, o in m["objectives"].items():
        rf = o["recovered"]
        rec_rows.append({
            "reasoner": r, "objective": obj.upper(), "reference": o["reference"],
            "GPTQ kept": ci(m["ptq_kept"]) if m["ptq_kept"].get("defined") else "–",
            "QAT kept": ci(o["qat_kept"]) if o["qat_kept"].get("defined") else "–",
            "gap (ref - GPTQ, points)": pts(rf["gap"]), "gain (QAT - GPTQ, points)": pts(rf["gain"]),
            "recovered fraction": ci(rf) if rf.get("defined") else "undefined: " + rf["why"]})
rec = pd.DataFrame(rec_rows)
save_table(rec, out_dir, "recovery")
display(Markdown(rec.to_markdown(index=False)))

# %%
fig, ax = plt.subplots(figsize=(2.2 + 2.4 * len(order), 3.6))
x = np.arange(len(order))
bars = [(f"GPTQ {W}", lambda m: m["ptq_kept"]), (f"QAT {W} (recipe)", lambda m: m["qat_kept"])]
w = 0.35
for j, (label, get) in enumerate(bars):
    vals = [get(M[r]) for r in order]
    mean = [100 * v["mean"] if v.get("defined") else np.nan for v in vals]
    err = np.array([[100 * (v["mean"] - v["ci95"][0]), 100 * (v["ci95"][1] - v["mean"])] if v.get("defined")
                    else [0, 0] for v in vals]).T
    ax.bar(x + (j - 0.5) * w, mean, w, yerr=err, capsize=3, label=label)
paper = PAPER_B["w2_r1"]  # the paper's W2 figures: drawn only beside our W2 results
if bits == 2:
    ax.axhline(100 * paper["gptq"] / paper["fp"], color="C0", ls=":", lw=1, label="paper GPTQ (unverified)")
    ax.axhline(100 * paper["qat"] / paper["fp"], color="C1", ls=":", lw=1, label="paper QAT (unverified)")
ax.axhline(100, color="k", ls="--", lw=1, label="FP")
ax.set_xticks(x, [f"{r}\n{M[r]['fp_params'] / 1e6:.1f}M params" for r in order])
ax.set_ylabel("share of FP accuracy kept (%)")
ax.set_title(f"{W}: share of FP accuracy kept (95% interval)")
ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.spines[["top", "right"]].set_visible(False)
fig.tight_layout()
display(Image(filename=save_figure(fig, out_dir, "kept_share")))

# %% [markdown]
# ## Verdicts
#
# * **PTQ breaks 2-bit models**: GPTQ keeps less than `BREAK_SHARE` of FP accuracy (its interval below it);
#   falsified when the interval lies above it.
# * **QAT recovers them**: the recipe wins back at least `RECOVER_SHARE` of GPTQ's loss (interval above it); not
#   testable where GPTQ loses nothing measurable.
# * **Smaller models suffer more**: the smaller reasoner's GPTQ kept share minus the larger's, paired over the same
#   test problems (seeds resampled per side), lies below 0. Two sizes give one comparison, not a trend.

# %%
scores = {r: {"fp": D[r]["fp"], "ptq": D[r]["ptq"], "qat": D[r]["qat"][M[r]["objective"]]["scores"]} for r in order}
cl = two_bit_claims({r: {"ptq_kept": M[r]["ptq_kept"], "recovered": M[r]["recovered"]} for r in order}, scores, order)
vr = []
for r in order:
    b = cl["ptq_breaks"][r]
    vr.append({"claim": f"PTQ (GPTQ) breaks {W}: keeps < {BREAK_SHARE:.0%} of FP", "where": r,
               "statistic": ci(b["share"]) if "share" in b else b.get("why", ""), "verdict": b["verdict"]})
    q = cl["qat_recovers"][r]
    vr.append({"claim": f"QAT recovers >= {RECOVER_SHARE:.0%} of GPTQ's loss", "where": r,
               "statistic": ci(q["fraction"]) if "fraction" in q else q.get("why", ""), "verdict": q["verdict"]})
for pair, s in cl["smaller_suffers_more"].items():
    stat = (f"GPTQ kept share, smaller - larger {ci(s['ptq_kept_diff'])}; QAT {ci(s['qat_kept_diff'])}"
            if "ptq_kept_diff" in s else s.get("why", ""))
    vr.append({"claim": f"smaller models keep less at {W} (PTQ)", "where": pair, "statistic": stat,
               "verdict": s["verdict"]})
verdicts = pd.DataFrame(vr)
save_table(verdicts, out_dir, "verdicts")
display(Markdown(verdicts.to_markdown(index=False)))

# %% [markdown]
# ## The paper's figures beside ours
#
# The paper's model and benchmark are not ours, so only shares are compared; its figures are at W2, so they stand
# beside ours only when this report is at W2.

# %%
if bits == 2:
    pc = pd.DataFrame([
        {"quantity": "GPTQ W2 keeps of FP", "paper": f"{100 * paper['gptq'] / paper['fp']:.1f}%",
         "ours": "; ".join(f"{r}: {ci(M[r]['ptq_kept'], 100)}%" for r in order if M[r]["ptq_kept"].get("defined"))},
        {"quantity": "QAT W2 keeps of FP", "paper": f"{100 * paper['qat'] / paper['fp']:.1f}%",
         "ours": "; ".join(f"{r}: {ci(M[r]['qat_kept'], 100)}%" for r in order if M[r]["qat_kept"].get("defined"))},
        {"quantity": "QAT wins back of GPTQ's loss",
         "paper": f"{100 * (paper['qat'] - paper['gptq']) / (paper['fp'] - paper['gptq']):.1f}%",
         "ours": "; ".join(f"{r}: {ci(M[r]['recovered'], 100)}%" if M[r]["recovered"].get("defined")
                           else f"{r}: undefined" for r in order)},
    ])
    pc["paper status"] = f"{PAPER_B_SOURCE}; {paper['setting']}"
    save_table(pc, out_dir, "paper_vs_ours")
    display(Markdown(pc.to_markdown(index=False)))
else:
    display(Markdown(f"Not compared: this report is at {W}, the paper's figures at W2."))

# %% [markdown]
# ## The shipped low-bit checkpoint
#
# The recipe's first seed, exported packed (compressed-tensors `pack-quantized`). Embeddings and `lm_head` stay full
# precision (paper B's setting): in these tiny models they are a large share of the parameters, which bounds the
# compression; `with embeddings quantized` is the size if they cost what a quantized weight costs here (scales and
# zero points included). Parity: stock `transformers` (`AutoModelForCausalLM.from_pretrained`, in a fresh Python
# process that imports nothing of this repository) decodes greedily on fixed validation prompts, against the
# in-process dequantized copy of the same checkpoint.

# %%
ck = []
for r in order:
    c = M[r]["checkpoint"]
    s = c["sizes"]
    ck.append({"reasoner": r, "run": c["run"], "FP32 weights (KiB)": c["fp32_weights_bytes"] / 1024,
               "packed (KiB)": c["packed_weights_bytes"] / 1024, "packed / FP32": c["packed_over_fp32"],
               "of which embeddings (KiB)": s["embeddings"] / 1024,
               "with embeddings quantized (KiB)": s["with_embeddings_quantized"] / 1024,
               "that / FP32": c["with_embeddings_quantized_over_fp32"],
               "greedy parity": f"{c['parity']['identical']}/{c['parity']['prompts']} prompts x "
                                f"{c['parity']['tokens']} tokens identical"})
ckt = pd.DataFrame(ck)
save_table(ckt, out_dir, "checkpoint")
display(Markdown(ckt.to_markdown(index=False, floatfmt=".2f")))
