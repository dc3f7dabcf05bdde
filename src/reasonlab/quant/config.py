"""Typed ``quant:`` section of params.yaml (the low-bit quantization pipeline, paper B RQ1/RQ2).

Importable without torch. Every value is checked when a quant stage reads ``params.yaml`` as
:class:`QuantParams` (the foundation's :class:`~reasonlab.params.Params` with this section typed and
:meth:`QuantConfig.check_models` run against ``models``); a bad one stops the stage with a message
naming its key, e.g. ``params.yaml: quant.qat.train.lr: Input should be greater than 0`` or
``quant.qat.ablation.bits=5 must be one of quant.bits [4, 3, 2]``. The foundation does not import
this module, so a change here re-runs only the quant stages.

Sections (see ``conf/quant/tiny.yaml`` for the values and what each one drives):

* ``reasoners``, ``bits``, ``group_size``, ``symmetric``, ``methods``: the PTQ grid
  (method x bits per reasoner) and the weight scheme shared by PTQ, QAT and export;
* ``calib``: the PTQ calibration set (domain ``traces`` = the QAT training data, aligned;
  ``general`` = the general-domain corpus, a WikiText analogue);
* ``traces``: the QAT training data, sampled from the full-precision reasoner on the
  held-out pool (never seen in pretraining) and verified (only correct traces are kept: self-generated data);
* ``qat``: the QAT runs. RQ1 (objective): every objective in ``objectives`` x every training-data source
  in ``sources`` from ``init`` at every bit width, for every seed, and (``controls``) the FP model fine-tuned
  like each QAT-SFT run. RQ2 (initialisation): every init in
  ``ablation.inits`` x every objective at ``ablation.bits``, for the reasoners and seeds
  of ``ablation``, with per-problem accuracy-vs-step curves from the ``probe`` on the validation split (never a
  test tier), each init compared with ``ablation.baseline``;
* ``eval``: how every FP / PTQ / QAT model is evaluated (Avg@k per tier);
* ``calib_align``: RQ4, calibration-domain alignment (stage ``quant_calib@<reasoner>``): PTQ calibrated on
  each domain of ``domains``, and QAT from each domain's PTQ init with curves on the validation split;
* ``two_bit``: low-bit recovery (stage ``quant_w2@<reasoner>``): the bit width it reads and the QAT recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from ..params import Params
from ..schema import ParamsError, SampledEval, Strict, TrainParams
from ..world.dialects import DIALECTS
from ..schema import check_unique as _unique

# The one source of these names (reasonlab.quant.scheme and .ptq import them from here, torch-free).
SUPPORTED_BITS = (2, 3, 4, 8)  # all packable by compressed-tensors
PTQ_METHODS = ("rtn", "gptq", "awq")
QAT_INITS = ("fp",) + PTQ_METHODS
OBJECTIVES = ("sft", "kd")
# RQ1's training data: the reasoner's own verified traces (self-generated), the same problems' solutions in the
# oracle's dialect and step order (a stronger writer's style: the paper's SFT data comes from a stronger model),
# and the world's reference solutions
QAT_SOURCES = ("self", "oracle", "reference")
KD_KINDS = ("forward_kl", "reverse_kl", "jsd")


CALIB_DOMAINS = ("traces", "general", "other_dialect")


class CalibConfig(Strict):
    domain: Literal["traces", "general"] = "traces"
    n_samples: int = Field(default=64, gt=0)
    max_len: int = Field(default=128, gt=8)


class TracesConfig(Strict):
    n_problems: int = Field(gt=0)  # training-pool problems sampled (a seeded random subset)
    samples_per_problem: int = Field(ge=1)
    max_per_problem: int = Field(default=1, ge=1)  # distinct correct traces kept per problem
    temperature: float = Field(gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(default=512, gt=0)
    seed: int = Field(default=0, ge=0)
    # a problem the FP reasoner does not solve: skip it (the paper) or, for barely trained
    # smoke-test reasoners, use its reference solution in the reasoner's dialect
    fallback: Literal["none", "reference"] = "none"

    @model_validator(mode="after")
    def _check(self):
        if self.max_per_problem > self.samples_per_problem:
            raise ValueError(
                f"quant.traces.max_per_problem={self.max_per_problem} exceeds "
                f"quant.traces.samples_per_problem={self.samples_per_problem}"
            )
        return self


class KDConfig(Strict):
    kind: Literal[KD_KINDS] = "forward_kl"
    temperature: float = Field(default=1.0, gt=0)
    beta: float = Field(default=0.5, gt=0, lt=1)  # teacher weight of the JSD mixture (kind=jsd)
    ce_weight: float = Field(default=0.0, ge=0, lt=1)  # loss = ce_weight * CE + (1 - ce_weight) * KD


class ValidationProbe(Strict):
    """Avg@k on the first ``n_problems`` of the world's validation split (never a test tier), with the same
    sampling seed at every probed step; kept per problem, so that two curves are compared problem by problem."""

    n_problems: int = Field(gt=0)
    k: int = Field(default=4, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    max_new_tokens: int = Field(default=128, gt=0)


class AblationConfig(Strict):
    """RQ2: QAT initialisation x objective at one bit width. Every init is compared with ``baseline`` (RTN, the
    paper's); ``fp`` (min-max scales) is RTN's grid at step 0, the same condition, so it is not a default init."""

    bits: int = 3
    inits: list[Literal[QAT_INITS]] = Field(default_factory=lambda: ["rtn", "gptq", "awq"])
    baseline: Literal[QAT_INITS] = "rtn"
    reasoners: list[str] | None = None  # None: every quant.reasoners entry
    seeds: list[int] | None = None  # None: quant.qat.seeds

    @model_validator(mode="after")
    def _check(self):
        _unique(self.inits, "quant.qat.ablation.inits")
        if self.baseline not in self.inits:
            raise ValueError(f"quant.qat.ablation.baseline={self.baseline!r} must be one of quant.qat.ablation.inits "
                             f"{self.inits}")
        if self.reasoners is not None:
            _unique(self.reasoners, "quant.qat.ablation.reasoners")
        if self.seeds is not None:
            _unique(self.seeds, "quant.qat.ablation.seeds")
            if min(self.seeds) < 0:
                raise ValueError(f"quant.qat.ablation.seeds must be >= 0, got {self.seeds}")
        return self


class QATConfig(Strict):
    train: TrainParams  # the training loop (a fixed number of steps)
    # what is compared
    objectives: list[Literal[OBJECTIVES]] = Field(default_factory=lambda: list(OBJECTIVES))
    kd: KDConfig = Field(default_factory=KDConfig)
    init: Literal[QAT_INITS] = "gptq"  # RQ1 runs start here (the paper's best init)
    sources: list[Literal[QAT_SOURCES]] = Field(default_factory=lambda: ["self"])  # RQ1: every objective x source
    oracle_dialect: Literal[tuple(DIALECTS)] = "oracle"  # the dialect (and its step order) of source ``oracle``
    controls: bool = False  # RQ1: the FP model fine-tuned like every QAT-SFT run (KD's control is the FP model)
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    learnable_scales: bool = False
    eval_every: int = Field(gt=0)  # RQ2 runs: probe every N steps (and at step 0 and at the end)
    probe: ValidationProbe
    target: float = Field(default=0.9, gt=0, le=1)  # RQ2 "converged": this fraction of the FP control's probe
    ablation: AblationConfig = Field(default_factory=AblationConfig)

    @model_validator(mode="after")
    def _check(self):
        _unique(self.objectives, "quant.qat.objectives")
        _unique(self.sources, "quant.qat.sources")
        if "self" not in self.sources:
            raise ValueError(f"quant.qat.sources={self.sources}: needs 'self' (the RQ2 runs and the tables' "
                             "reference condition train on the reasoner's own traces)")
        _unique(self.seeds, "quant.qat.seeds")
        if min(self.seeds) < 0:
            raise ValueError(f"quant.qat.seeds must be >= 0, got {self.seeds}")
        if self.train.steps is None:
            raise ValueError("quant.qat.train.steps: QAT trains for a fixed number of steps")
        return self


class CalibAlignConfig(Strict):
    """RQ4: does calibrating PTQ on the QAT training domain help PTQ, and QAT started from it?

    Every domain of ``domains`` gives a calibration set of the same size (``n_samples``, or fewer where a
    domain affords fewer: the smallest domain decides, and the metrics say how many): ``traces``, the
    reasoner's own verified traces (one per problem; the QAT training data, i.e. the aligned domain);
    ``other_dialect``, the reference solutions of the same problems written in ``other_dialect`` (same
    problems and logic, foreign style); ``general``, the general-domain corpus (no arithmetic).
    """

    domains: list[Literal[CALIB_DOMAINS]] = Field(default_factory=lambda: list(CALIB_DOMAINS))
    other_dialect: str = "oracle"
    n_samples: int = Field(default=256, gt=0)
    max_len: int = Field(default=128, gt=8)
    methods: list[Literal["gptq", "awq"]] = Field(default_factory=lambda: ["gptq", "awq"])  # RTN uses no data
    bits: list[int] = Field(default_factory=lambda: [3, 2])
    qat_bits: int = 2
    qat_init: Literal["gptq", "awq"] = "gptq"
    objective: Literal[OBJECTIVES] = "kd"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    eval_every: int = Field(default=10, gt=0)
    target: float = Field(default=0.9, gt=0, le=1)  # "converged": this fraction of the FP control's probe accuracy
    probe: ValidationProbe

    @model_validator(mode="after")
    def _check(self):
        _unique(self.domains, "quant.calib_align.domains")
        _unique(self.methods, "quant.calib_align.methods")
        _unique(self.bits, "quant.calib_align.bits")
        _unique(self.seeds, "quant.calib_align.seeds")
        if "traces" not in self.domains or len(self.domains) < 2:
            raise ValueError(f"quant.calib_align.domains={self.domains}: needs 'traces' (the aligned domain) "
                             "and at least one other to compare it with")
        if self.qat_bits not in self.bits:
            raise ValueError(f"quant.calib_align.qat_bits={self.qat_bits} must be one of quant.calib_align.bits "
                             f"{self.bits}")
        if self.qat_init not in self.methods:
            raise ValueError(f"quant.calib_align.qat_init={self.qat_init!r} must be one of "
                             f"quant.calib_align.methods {self.methods}")
        if min(self.seeds) < 0:
            raise ValueError(f"quant.calib_align.seeds must be >= 0, got {self.seeds}")
        return self


class TwoBitConfig(Strict):
    """Stage ``quant_w2@<reasoner>`` (low-bit recovery): the bit width it reads (one of ``quant.bits``; 2, paper B's
    headline, by default: ``dvc exp run -S quant.two_bit.bits=3`` gives the same table at W3) and the QAT recipe,
    fixed here before any result is read (RQ1's objective, RQ4's aligned source; the init is ``quant.qat.init``)."""

    bits: int = 2
    objective: Literal[OBJECTIVES] = "kd"
    source: Literal[QAT_SOURCES] = "self"


class QuantEvalConfig(SampledEval):
    tiers_key = "quant.eval.tiers"
    batch_size: int = Field(default=512, gt=0)


class QuantConfig(Strict):
    reasoners: list[str]
    bits: list[int]
    group_size: int = Field(gt=0)
    symmetric: bool = False
    methods: list[Literal[PTQ_METHODS]]
    calib: CalibConfig = Field(default_factory=CalibConfig)
    traces: TracesConfig
    qat: QATConfig
    eval: QuantEvalConfig
    calib_align: CalibAlignConfig
    two_bit: TwoBitConfig = Field(default_factory=TwoBitConfig)

    @model_validator(mode="after")
    def _check(self):
        _unique(self.reasoners, "quant.reasoners")
        _unique(self.bits, "quant.bits")
        bad = [b for b in self.bits if b not in SUPPORTED_BITS]
        if bad:
            raise ValueError(f"quant.bits: {bad} not supported; choose from {list(SUPPORTED_BITS)}")
        _unique(self.methods, "quant.methods")
        ab = self.qat.ablation
        if ab.bits not in self.bits:
            raise ValueError(f"quant.qat.ablation.bits={ab.bits} must be one of quant.bits {self.bits}")
        for key, inits in (("quant.qat.init", [self.qat.init]), ("quant.qat.ablation.inits", ab.inits)):
            missing = [i for i in inits if i != "fp" and i not in self.methods]
            if missing:
                raise ValueError(
                    f"{key}: init(s) {missing} need a PTQ model, add them to quant.methods {self.methods}"
                )
        if ab.reasoners is not None:
            unknown = [r for r in ab.reasoners if r not in self.reasoners]
            if unknown:
                raise ValueError(f"quant.qat.ablation.reasoners: {unknown} not in quant.reasoners {self.reasoners}")
        tb = self.two_bit
        if tb.bits not in self.bits:
            raise ValueError(f"quant.two_bit.bits={tb.bits} must be one of quant.bits {self.bits}")
        if tb.objective not in self.qat.objectives:
            raise ValueError(f"quant.two_bit.objective={tb.objective!r} must be one of quant.qat.objectives "
                             f"{self.qat.objectives}")
        if tb.source not in self.qat.sources:
            raise ValueError(f"quant.two_bit.source={tb.source!r} must be one of quant.qat.sources {self.qat.sources}")
        bad = [b for b in self.calib_align.bits if b not in self.bits]
        if bad:
            raise ValueError(f"quant.calib_align.bits: {bad} must be in quant.bits {self.bits}")
        if self.calib.domain == "traces" and self.calib.max_len > self.qat.train.max_len:
            raise ValueError(
                f"quant.calib.max_len={self.calib.max_len} exceeds quant.qat.train.max_len={self.qat.train.max_len}"
            )
        return self

    # ------------------------------------------------------------------ helpers
    def check_stage(self, reasoner: str, bits: int | None = None) -> None:
        """Raise :class:`~reasonlab.schema.ParamsError` unless a stage's reasoner (and bits) are configured."""
        if reasoner not in self.reasoners:
            raise ParamsError(f"params.yaml: quant.reasoners {self.reasoners} does not list {reasoner!r}")
        if bits is not None and bits not in self.bits:
            raise ParamsError(f"params.yaml: quant.bits {self.bits} does not list {bits}")

    def ablation_reasoners(self) -> list[str]:
        ab = self.qat.ablation.reasoners
        return list(self.reasoners) if ab is None else list(ab)

    def ablation_seeds(self) -> list[int]:
        ab = self.qat.ablation.seeds
        return list(self.qat.seeds) if ab is None else list(ab)

    def check_models(self, models: Mapping[str, Any]) -> None:
        """Check ``reasoners`` against the ``models`` section (``{name: ModelParams}``).

        Every reasoner must be a ``models`` entry, and ``group_size`` must divide the input
        width of every quantized linear (``hidden`` and ``intermediate``) of every locally
        trained reasoner (hub models are checked when they are loaded).

        Raises:
            ValueError: naming the key.
        """
        for name in self.reasoners:
            if name not in models:
                raise ValueError(f"quant.reasoners: {name!r} is not a models entry (known: {sorted(models)})")
            spec = models[name]
            if "oracle" in self.qat.sources and getattr(spec, "dialect", None) == self.qat.oracle_dialect:
                raise ValueError(f"quant.qat.oracle_dialect={self.qat.oracle_dialect!r} is models.{name}.dialect: "
                                 "source 'oracle' must be written in another dialect than the reasoner's")
            if getattr(spec, "dialect", None) == self.calib_align.other_dialect:
                raise ValueError(f"quant.calib_align.other_dialect={self.calib_align.other_dialect!r} is "
                                 f"models.{name}.dialect: the foreign-style domain must be another dialect")
            if getattr(spec, "hub_id", None):
                continue
            for field in ("hidden", "intermediate"):
                width = int(getattr(spec, field))
                if width % self.group_size:
                    raise ValueError(
                        f"quant.group_size={self.group_size} does not divide models.{name}.{field}={width}"
                    )


class QuantParams(Params):
    """params.yaml as the quant stages read it: the foundation's sections and the typed ``quant`` section, which
    :class:`~reasonlab.params.Params` checks against ``models`` (``load_params(path, QuantParams)``)."""

    quant: QuantConfig
