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
# # Base models
#
# Accuracy of each base model (three small-model families, the oracle and the reasoners) on the three test tiers.
# **Avg@k** is the mean share of k samples at temperature T that are correct (95% percentile-bootstrap
# interval over problems); **greedy** is one greedy decode per problem (95% Wilson interval).

# %% tags=["parameters"]
eval_dir = "metrics/eval"
pretrain_dir = "metrics/pretrain"
world_dir = "data/world"
models = None  # the models of params.yaml (None: every metrics file)
sample_index = 0
out_dir = "reports/base_models"

# %%
import json
from pathlib import Path
import pandas as pd
from IPython.display import Image, Markdown, display
from reasonlab.report import load_metrics_dir, accuracy_table, fmt_ci, save_table, save_figure, grouped_bars
from reasonlab.world.dialects import DIALECTS
from reasonlab.world.tasks import open_task

# only the models of this profile: a metrics folder can hold another profile's files
ev = {m: v for m, v in load_metrics_dir(eval_dir).items() if models is None or m in models}
pre = {m: v for m, v in load_metrics_dir(pretrain_dir).items() if models is None or m in models}
k = next(iter(ev.values()))["k"]
df = accuracy_table(ev)
save_table(df, out_dir, "base_accuracy")

# %% [markdown]
# ## Accuracy by tier

# %%
show = df.assign(**{
    f"Avg@{k} [95% CI]": [fmt_ci(v, lo, hi) for v, lo, hi in zip(df[f"Avg@{k}"], df.avg_lo, df.avg_hi)],
    "greedy [95% CI]": [fmt_ci(v, lo, hi) for v, lo, hi in zip(df.greedy, df.greedy_lo, df.greedy_hi)],
})[["model", "tier", f"Avg@{k} [95% CI]", "greedy [95% CI]", f"pass@{k}", "mean_len_tokens", "step_validity", "n"]]
display(Markdown(show.to_markdown(index=False, floatfmt=".1f")))

# %%
fig = grouped_bars(df, f"Avg@{k}", "avg_lo", "avg_hi", group="tier", hue="model",
                   ylabel=f"Avg@{k} (%)", title=f"Base models: Avg@{k} by tier (95% CI)")
display(Image(filename=save_figure(fig, out_dir, "base_avg_at_k")))

# %%
fig = grouped_bars(df, "greedy", "greedy_lo", "greedy_hi", group="tier", hue="model",
                   ylabel="greedy accuracy (%)", title="Base models: greedy accuracy by tier (95% Wilson CI)")
display(Image(filename=save_figure(fig, out_dir, "base_greedy")))

# %% [markdown]
# ## Order habits
# Each family's pretraining solutions follow its own valid step order (qwen left branch first, llama by level,
# deepseek statement order, the oracle right branch first; `reasonlab.world.dialects.DIALECT_HABIT`). Share of
# the fully valid samples of problems with 2+ valid orders written in each habit's order (a sample can match
# several habits where their orders coincide); n = such samples.

# %%
habit_rows = [{"model": m, "tier": t, "n": tv["order_habits_n"], **{h: 100 * x for h, x in tv["order_habits"].items()}}
              for m, v in ev.items() for t, tv in v.items() if isinstance(tv, dict) and "order_habits" in tv]
if habit_rows:
    habits_df = pd.DataFrame(habit_rows)
    save_table(habits_df, out_dir, "order_habits")
    display(Markdown(habits_df.to_markdown(index=False, floatfmt=".0f")))
else:
    display(Markdown("No fully valid sample of a multi-order problem (or a world without step orders)."))

# %% [markdown]
# ## Training

# %%
tr = pd.DataFrame([{"model": m, "arch": s.get("arch"), "params": s.get("params"),
                    "non-embedding params": s.get("non_embedding_params"), "steps": s.get("steps"),
                    "wall time (s)": s.get("wall_s"), "tokens/s": s.get("tokens_per_s"), "final loss": s.get("final_loss"),
                    "dialect mix": ", ".join(f"{d}:{n}" for d, n in (s.get("dialect_mix") or {}).items() if n)}
                   for m, s in pre.items()])
save_table(tr, out_dir, "training")
display(Markdown(tr.to_markdown(index=False, floatfmt=[".0f" if c == "tokens/s" else ".3g" for c in tr.columns])))

# %% [markdown]
# ## One training problem, in every dialect the world has

# %%
task = open_task(world_dir)
item = task.train_items([sample_index])[0]
if task.has_graphs:
    p = item.problem
    lines = [f"**Problem** ({p.steps} steps, answer {p.answer}): {item.text}", ""]
    lines += [f"- **{d}**: `{task.solution(item, d)}`" for d in DIALECTS]
else:  # the paper world: free-form solutions, no dialects
    lines = [f"**Problem**: {item.text}", "", f"**Reference solution**: {item.reference}"]
display(Markdown("\n".join(lines)))
