"""Typed ``paradox:`` section of params.yaml (the Quality-Utility Paradox pipeline, paper A).

Importable without torch. Every value is checked when a paradox stage reads ``params.yaml`` as
:class:`ParadoxParams` (the foundation's :class:`~reasonlab.params.Params` with this section typed);
a bad one stops the stage with a message naming its key, e.g.
``params.yaml: paradox.finetune.train.lr: Input should be greater than 0`` or
``paradox.reward.pool: hard_share + rft_failed_share must be <= 1``. The checks that need the rest of
params.yaml (the families and the oracle are ``models`` entries) are :meth:`ParadoxConfig.check_models`,
run by :class:`ParadoxParams`. The foundation does not import this module, so a change here re-runs
only the paradox stages.

Sections (``conf/paradox/tiny.yaml`` holds the values and says what each one drives):

* ``families``, ``oracle``: the small-model families studied and the base oracle (``models`` entries);
* ``problems``: which held-out problems (never seen in pretraining) each role uses. The pool is permuted under a seed and
  dealt round-robin to three disjoint roles (RFT, oracle-mode training, reward-model pool), so no
  model is trained on the problems whose traces it later writes or scores;
* ``sample``: rejection sampling (N samples at temperature T per RFT problem, one correct trace kept);
* ``oracle_modes``: fine-tuning ``models/oracle`` on the synth / refine / style prompts
  (world-generated drafts with realistic mistakes) into ``models/oracle_modes``;
* ``oracle_run``: how the oracle writes the sets (greedy first try, sampled retries, every output verified);
* ``templates``: the paper profile's chat prompts of the three modes (format strings);
* ``reward``: the reward model (architecture, pool composition, Bradley-Terry training);
* ``analysis``: perplexity and token-shift settings of the scoring stage;
* ``finetune``: the students: every set x objective x seed with the same budget (``train``: epochs of
  the common problem ids, batch size, learning rate);
* ``student_eval``: Avg@k of every student per tier;
* ``grid``: the robustness grid (learning rate x batch size) run as DVC experiments;
* ``adaptation``: the adaptation-cost stage (the causal drift sweep's levels, objectives, seeds, evaluation).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from ..params import Params
from ..schema import ArchParams, ParamsError, SampledEval, Strict, TrainParams
from ..schema import check_unique as _unique

# The one source of the names the paradox pipeline uses (the stages, the tables and the report).
FAMILY_DIALECTS = ("qwen", "llama", "deepseek")
OBJECTIVES = ("sft", "dft")
SETS = ("slm_rft", "oracle_refined", "oracle_synth", "reference", "style_aligned")
SET_LABELS = {
    "slm_rft": "SLM-RFT",
    "oracle_refined": "Oracle-Refined",
    "oracle_synth": "Oracle-Synthesized",
    "reference": "Reference",
    "style_aligned": "Style-Aligned",
}
MODES = ("synth", "refine", "style")  # the oracle's prompted modes
MODE_OF_SET = {"oracle_refined": "refine", "oracle_synth": "synth", "style_aligned": "style"}
MISTAKE_KINDS = ("arithmetic", "operand", "skip", "cutoff")
DRAFT_KINDS = MISTAKE_KINDS + ("correct",)
QUARTERS_ = ("Q1", "Q2", "Q3", "Q4")
_TEMPLATE_FIELDS = {"synth": {"problem"}, "refine": {"problem", "draft"}, "style": {"problem", "draft"}}


class ProblemsConfig(Strict):
    """Training-pool problems per role (disjoint; see the module docstring)."""

    seed: int = Field(default=0, ge=0)
    rft: int = Field(gt=0)  # problems rejection-sampled by every family (the sets are built on them)
    oracle_modes: int = Field(gt=0)  # problems whose drafts train the oracle's modes
    reward: int = Field(gt=0)  # problems of the reward model's pairs (and of its rft_failed samples)
    min_ids: int = Field(default=1, ge=0)  # fail when fewer problems are solvable / survive into the five sets


class SampleConfig(Strict):
    """Rejection sampling (SLM-RFT): ``n`` samples at ``temperature`` per problem."""

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(default=64, gt=0)  # sequences per generate() call
    reward_problems: int = Field(default=0, ge=0)  # also sample this many reward-role problems (rft_failed source)


class OracleModesConfig(Strict):
    """Fine-tuning the base oracle on its three prompted modes."""

    train: TrainParams
    drafts_per_problem: int = Field(default=1, ge=1)
    kind_weights: dict[Literal[DRAFT_KINDS], float] = Field(
        default_factory=lambda: {"correct": 0.2, "arithmetic": 0.25, "operand": 0.25, "skip": 0.15, "cutoff": 0.15})
    eval_problems: int = Field(default=16, ge=0)  # held-out check of each mode's verified pass rate after training

    @model_validator(mode="after")
    def _check(self):
        w = self.kind_weights
        if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise ValueError(f"kind_weights need non-negative weights with a positive sum, got {w}")
        if self.train.steps is None:
            raise ValueError("train.steps: the oracle modes train for a fixed number of steps")
        return self


class OracleRunConfig(Strict):
    """How the oracle writes the refined / synthesized / style-aligned sets.

    ``proposer``: ``model`` prompts ``models/oracle_modes`` (paper profile: the hub oracle through
    ``templates``); ``expert`` is the world's own solver (:func:`~reasonlab.paradox.oracle.expert_oracle`: it derives;
    refine keeps the draft's valid steps and order and restates them in the oracle's form; style repairs only;
    synthesize follows the oracle's order habit): a labelled stand-in for a frontier oracle where no affordable
    learned one reaches the bar, and the smoke profile's oracle.
    """

    proposer: Literal["model", "expert"] = "model"
    max_retries: int = Field(default=2, ge=0)
    temperature: float = Field(default=0.0, ge=0)  # first try (0: greedy)
    retry_temperature: float = Field(default=0.8, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(default=64, gt=0)


class TemplatesConfig(Strict):
    """Paper-profile chat prompts (format strings; ``{{}}`` is a literal ``{}``)."""

    system: str
    synth: str
    refine: str
    style: str

    @model_validator(mode="after")
    def _check(self):
        for mode, need in _TEMPLATE_FIELDS.items():
            t = getattr(self, mode)
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
            except ValueError as e:
                raise ValueError(f"{mode}: not a valid format string ({e}); write literal braces as {{{{ }}}}") from None
            if names - need:
                raise ValueError(f"{mode}: unknown placeholders {sorted(names - need)}; allowed {sorted(need)}")
            if need - names:
                raise ValueError(f"{mode}: missing placeholders {sorted(need - names)}")
        return self

    def modes(self) -> dict[str, str]:
        return {m: getattr(self, m) for m in MODES}


class PoolConfig(Strict):
    """Composition of the reward model's pairs (as :class:`reasonlab.paradox.reward.PoolComposition`).

    ``chosen_oracle_share`` / ``rejected_oracle_share``: the share of the pairs' chosen / rejected answers
    written in the oracle's dialect (the rest evenly over the small-model dialects); equal shares balance the
    pool by dialect (every pair within one dialect). Rejected answers: ``hard_share`` of every dialect's are
    hard negatives (right answer, invalid step), ``rft_failed_share`` of every small dialect's are the
    families' real failed rejection samples on reward-role problems, the rest world drafts with a wrong answer.
    ``cross_dialect_share``: at least this share of the pairs across dialects, built so that each dialect keeps
    its chosen and rejected shares (pins the offset between dialects without leaking the dialect into the label).
    """

    n_pairs: int = Field(gt=0)
    chosen_oracle_share: float = Field(ge=0, le=1)
    rejected_oracle_share: float = Field(ge=0, le=1)
    hard_share: float = Field(ge=0, le=1)
    rft_failed_share: float = Field(default=0.0, ge=0, le=1)
    cross_dialect_share: float = Field(default=0.0, ge=0, le=1)
    eval_pairs: int = Field(default=64, ge=0)  # held-out pairs (same composition, other problems) for accuracy

    @model_validator(mode="after")
    def _check(self):
        if self.hard_share + self.rft_failed_share > 1 + 1e-9:
            raise ValueError(f"hard_share + rft_failed_share must be <= 1, got {self.hard_share} + "
                             f"{self.rft_failed_share}")
        return self


class RewardConfig(Strict):
    """The reward model: a ``*ForSequenceClassification`` of ``model``'s size trained from scratch on the
    pool (``model.hub_id``: a released reward model, scored as is)."""

    model: ArchParams = Field(default_factory=lambda: ArchParams(hidden=64, layers=2, heads=4, intermediate=192))
    pool: PoolConfig
    train: TrainParams
    score_batch_size: int = Field(default=64, gt=0)


class AnalysisConfig(Strict):
    batch_size: int = Field(default=32, gt=0)  # perplexity batches
    top_tokens: int = Field(default=15, gt=0)  # tokens listed by the token-shift analysis
    n_boot: int = Field(default=2000, ge=100)  # bootstrap resamples of the RM-score interval


class FinetuneConfig(Strict):
    """Every student: the family's base model fine-tuned on one set with one objective and seed.

    Every set gets the same budget: ``train.epochs`` over the common problem ids
    (:meth:`~reasonlab.schema.TrainParams.resolve`).
    """

    objectives: list[Literal[OBJECTIVES]] = Field(default_factory=lambda: list(OBJECTIVES))
    sets: list[Literal[SETS]] = Field(default_factory=lambda: list(SETS))
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    train: TrainParams

    @model_validator(mode="after")
    def _check(self):
        _unique(self.objectives, "objectives")
        _unique(self.sets, "sets")
        _unique(self.seeds, "seeds")
        if min(self.seeds) < 0:
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        return self


class StudentEvalConfig(SampledEval):
    k: int = Field(default=16, ge=1)


class GridConfig(Strict):
    """The robustness grid, run as DVC experiments (``python -m reasonlab.paradox.grid``)."""

    lr: list[float] = Field(default_factory=lambda: [1e-4, 3e-4, 1e-3])
    batch_size: list[int] = Field(default_factory=lambda: [8, 16, 32])

    @model_validator(mode="after")
    def _check(self):
        _unique(self.lr, "lr")
        _unique(self.batch_size, "batch_size")
        if min(self.lr) <= 0 or max(self.lr) > 1:
            raise ValueError(f"lr values must be in (0, 1], got {self.lr}")
        if min(self.batch_size) <= 0:
            raise ValueError(f"batch_size values must be > 0, got {self.batch_size}")
        return self


class AdaptationConfig(Strict):
    """The adaptation-cost stage (``adaptation_cost@<family>``): the causal drift sweep and the loss attribution.

    The sweep trains students (the finetune stage's budget, ``finetune.train``) on the family's surviving problem
    ids rendered correctly at each drift ``levels`` value (a share of the steps in ``other``'s surface form;
    ``order_axis``: also the family's dialect in ``other``'s step order), ``objectives`` x ``seeds``, evaluated
    with ``eval`` (default: the students' evaluation without the hard tier, which sits at the floor)."""

    levels: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    other: str = "oracle"             # the dialect the drifted steps take
    order_axis: bool = True           # the second axis: the family's dialect in other's step order
    drift_seed: int = Field(default=0, ge=0)  # which steps drift at a level (a pure function of it and the pid)
    objectives: list[Literal[OBJECTIVES]] = Field(default_factory=lambda: ["sft"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    eval: StudentEvalConfig | None = None  # None: student_eval
    quarter: Literal[QUARTERS_] | None = "Q1"  # loss attribution's quarter (None: the whole trace)
    top_tokens: int = Field(default=10, gt=0)
    n_boot: int = Field(default=2000, ge=100)

    @model_validator(mode="after")
    def _check(self):
        _unique(self.levels, "levels")
        _unique(self.objectives, "objectives")
        _unique(self.seeds, "seeds")
        if len(self.levels) < 3:
            raise ValueError(f"levels: a rank correlation needs at least 3 levels, got {self.levels}")
        if any(not 0 <= v <= 1 for v in self.levels) or self.levels != sorted(self.levels):
            raise ValueError(f"levels must be increasing values in [0, 1], got {self.levels}")
        if self.seeds and min(self.seeds) < 0:
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        if self.other not in ("oracle", "reference", *FAMILY_DIALECTS):
            raise ValueError(f"other: unknown dialect {self.other!r}")
        return self


class ParadoxConfig(Strict):
    families: list[str] = Field(default_factory=lambda: list(FAMILY_DIALECTS))
    oracle: str = "oracle"
    problems: ProblemsConfig
    sample: SampleConfig
    oracle_modes: OracleModesConfig
    oracle_run: OracleRunConfig
    templates: TemplatesConfig
    reward: RewardConfig
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    finetune: FinetuneConfig
    student_eval: StudentEvalConfig
    grid: GridConfig = Field(default_factory=GridConfig)
    adaptation: AdaptationConfig = Field(default_factory=AdaptationConfig)

    @model_validator(mode="after")
    def _check(self):
        _unique(self.families, "families")
        if self.oracle in self.families:
            raise ValueError(f"oracle {self.oracle!r} must not be one of the families {self.families}")
        if self.reward.pool.rft_failed_share > 0 and self.sample.reward_problems == 0:
            raise ValueError("reward.pool.rft_failed_share > 0 but sample.reward_problems is 0 "
                             "(no rejection samples are drawn on reward-role problems)")
        if self.sample.reward_problems > self.problems.reward:
            raise ValueError(f"sample.reward_problems={self.sample.reward_problems} exceeds "
                             f"problems.reward={self.problems.reward}")
        return self

    def check_family(self, family: str) -> None:
        """Raise :class:`~reasonlab.schema.ParamsError` unless ``family`` is one of ``families``."""
        if family not in self.families:
            raise ParamsError(f"params.yaml: paradox.families {self.families} does not list {family!r}")

    def check_models(self, models: Mapping[str, Any]) -> None:
        """The families and the oracle against the ``models`` section (``{name: ModelParams}``)."""
        for f in self.families:
            if f not in models:
                raise ValueError(f"paradox.families: {f!r} is not a models entry (known: {sorted(models)})")
            if models[f].role != "small":
                raise ValueError(f"paradox.families: models.{f} has role {models[f].role!r}, not 'small'")
        if self.oracle not in models:
            raise ValueError(f"paradox.oracle: {self.oracle!r} is not a models entry (known: {sorted(models)})")


class ParadoxParams(Params):
    """params.yaml as the paradox stages read it: the foundation's sections and the typed ``paradox`` section, which
    :class:`~reasonlab.params.Params` checks against ``models`` (``load_params(path, ParadoxParams)``)."""

    paradox: ParadoxConfig
