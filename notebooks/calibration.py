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
# # Calibration-domain alignment (paper B, RQ4) in the tiny world
#
# Paper B claims that calibrating PTQ on the domain of the QAT training data makes QAT converge faster and often
# end higher; the quantized-reasoning-models repository calibrates GPTQ on self-generated reasoning traces and
# reports that this helps PTQ itself. Here each full-precision reasoner is quantized by GPTQ and AWQ with
# calibration sets of the same size from three domains:
#
# * **traces**: the reasoner's own verified traces (one per problem), which are also its QAT training data:
#   the aligned domain;
# * **other_dialect**: the reference solutions of the *same problems*, written in a dialect the reasoner never
#   saw in pretraining (same logic and numbers, foreign style);
# * **general**: paragraphs of the world's general-domain corpus (a WikiText analogue, no arithmetic).
#
# QAT (KD from the FP model) then starts from each domain's GPTQ model at one bit width, for several seeds; a
# probe on the **validation split** (never a test tier) is taken every few steps, per problem. Its FP control
# is the FP model itself: KD of a model to itself has a zero gradient.
#
# Every comparison is paired: the same problems (and seeds) under both conditions, with a percentile bootstrap
# over problems and seeds. A claim is **not testable here** when its precondition fails: for PTQ alone, PTQ
# calibrated on the other domain must lose accuracy against FP (else no calibration can win anything back); for
# QAT, at least one of the two inits must start below the FP control on the probe. Nothing here trains: the
# numbers come from the `quant_calib` DVC stages.

# %% tags=["parameters"]
metrics_dir = "metrics/quant/calib"
plots_dir = "plots/quant/calib"
reasoners = None  # the grid of params.yaml (None: every metrics file)
out_dir = "reports/calibration"

# %%
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown, display
from reasonlab.report import save_table, save_figure
from reasonlab.quant.calib_tables import (load_calib, sets_table, ptq_table, ptq_claims, qat_table, qat_claims,
                                          load_calib_curves, loss_table)

res = load_calib(metrics_dir, reasoners)
k = next(iter(res.values()))["k"]

# %% [markdown]
# ## The calibration sets
#
# The same number of texts in every domain (the smallest domain decides); `digest` is the hash of the texts
# that the PTQ checkpoints record in their metadata.

# %%
st = sets_table(res)
save_table(st, out_dir, "calibration_sets")
display(Markdown(st.to_markdown(index=False, floatfmt=".1f")))

# %% [markdown]
# ## PTQ alone: does calibrating on the reasoner's own traces help?
#
# Avg@k (%) on the test tiers, per calibration domain.

# %%
pt = ptq_table(res)
save_table(pt, out_dir, "ptq_by_domain")
display(Markdown(pt.to_markdown(index=False, floatfmt=".1f")))
pc = ptq_claims(res)
save_table(pc, out_dir, "ptq_claims")
display(Markdown(pc.to_markdown(index=False)))

# %% [markdown]
# ## QAT from each domain's PTQ init
#
# `init probe`: the PTQ init's probe accuracy (step 0); `target`: the configured share of the FP control's
# probe accuracy; `steps to target`: per seed, the first probed step at or above it (`-`: never within the
# budget); `area after 0`: the mean probe accuracy over the probed steps after step 0 (the init's own point left
# out, so a higher start alone does not win it); `final`: test Avg@k after the budget, mean ± sd over seeds.

# %% [markdown]
# The last column of the claims is not a claim: how much higher the aligned curve rose above its *own* init
# than the other one did. "Converges faster" with a rise near 0 means the aligned init's head start carried
# through the budget, not that QAT learned faster from it.

# %%
qt = qat_table(res)
save_table(qt, out_dir, "qat_by_domain")
display(Markdown(qt.to_markdown(index=False, floatfmt=".1f")))
qc = qat_claims(res)
save_table(qc, out_dir, "qat_claims")
display(Markdown(qc.to_markdown(index=False)))

# %%
curves = load_calib_curves(plots_dir, reasoners)
if curves.empty:
    display(Markdown("_No QAT curves in these results._"))
else:
    names = list(dict.fromkeys(curves.reasoner))
    fig, axes = plt.subplots(2, len(names), figsize=(5.0 * len(names), 6.4), squeeze=False, sharex=True)
    for j, r in enumerate(names):
        sub = curves[curves.reasoner == r]
        for dom in dict.fromkeys(sub.domain):
            d = sub[sub.domain == dom]
            p = d.dropna(subset=["probe_acc"]).groupby("step")["probe_acc"].mean()
            line, = axes[0][j].plot(p.index, 100 * p.values, marker="o", ms=3, label=dom)
            for _, s in d.dropna(subset=["probe_acc"]).groupby("seed"):
                axes[0][j].plot(s.step, 100 * s.probe_acc, color=line.get_color(), alpha=0.25, lw=0.8)
            lo = d.dropna(subset=["loss"]).groupby("step")["loss"].mean()
            axes[1][j].plot(lo.index, lo.values, color=line.get_color(), label=dom)
        axes[0][j].axhline(100 * res[r]["fp"]["probe"], color="k", ls="--", lw=1, label="FP control")
        axes[0][j].axhline(100 * res[r]["target_acc"], color="k", ls=":", lw=1, label="target")
        axes[0][j].set_title(f"{r}, QAT-{res[r]['qat']['objective'].upper()}, W{res[r]['qat']['bits']}")
        axes[0][j].set_ylabel(f"validation probe Avg@k (%)")
        axes[1][j].set_ylabel("training loss")
        axes[1][j].set_xlabel("QAT step")
        for ax in axes[:, j]:
            ax.spines[["top", "right"]].set_visible(False)
    axes[0][-1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    display(Image(filename=save_figure(fig, out_dir, "qat_curves")))
    save_table(curves, out_dir, "curves")

# %% [markdown]
# The training loss (KD to the FP model on the QAT traces), by init domain: a description, not a claim. A seed's
# batches are the same whatever the init, so the inits are compared seed by seed; `x traces` is the mean loss over
# the budget relative to the own-traces init's.

# %%
lt = loss_table(curves)
save_table(lt, out_dir, "qat_loss")
display(Markdown(lt.to_markdown(index=False, floatfmt=".2f")))

# %% [markdown]
# Per-problem results of every model (test suite and validation probe at every probed step) are in
# `data/quant/calib/<reasoner>/per_problem.parquet`, and every calibration text with its source in
# `data/quant/calib/<reasoner>/calib_sets.json`, so each interval above can be recomputed.
