"""Typed views of ``params.yaml``: the foundation's sections.

Every section is a pydantic model with ``extra="forbid"``: an unknown key, a wrong type or an
out-of-range value stops the stage with a :class:`ParamsError` whose message names the key
(``models.qwen.hidden: ...``). Checks that span sections run here too (a model's ``train``
overrides merged with ``pretrain``).

:class:`Params` validates what the foundation stages (world, pretrain, eval, the base-model report)
use and keeps each paper's section (``quant``, ``paradox``) as a raw mapping, so this module imports
no paper code and a change to a paper's config re-runs none of the foundation stages. Each paper
types its own section in a subclass (:class:`reasonlab.paradox.config.ParadoxParams`,
:class:`reasonlab.quant.config.QuantParams`), whose ``check_models`` against ``models`` runs here; its stages load
that class (``load_params(path, ParadoxParams)``). :func:`reasonlab.profiles.load_all` validates
the whole file (every section, every cross-section check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError, model_validator

from .schema import TIERS, ArchParams, ParamsError, SampledEval, Strict, TrainParams
from .world.dialects import DIALECTS

__all__ = ["ParamsError", "Strict", "Params", "TrainParams", "load_params", "parse_params"]


def _range(v: list[int], name: str, lo: int = 0) -> None:
    if len(v) != 2 or v[0] > v[1] or v[0] < lo:
        raise ValueError(f"{name} must be [low, high] with {lo} <= low <= high, got {v}")


class Tiers(Strict):
    easy: list[int]
    medium: list[int]
    hard: list[int]

    @model_validator(mode="after")
    def _check(self):
        for t in TIERS:
            _range(getattr(self, t), t, lo=1)
        return self


class WorldParams(Strict):
    max_value: int = Field(ge=10, le=999)
    given_range: list[int]
    const_range: list[int]
    train_steps: list[int]
    train_size: int = Field(gt=0)
    heldout_size: int = Field(gt=0)     # never seen in pretraining: paradox roles, QAT traces
    validation_size: int = Field(gt=0)  # for anything probed or selected during training
    test_size: int = Field(gt=0)
    tiers: Tiers
    general_size: int = Field(gt=0)
    branch_share: float = Field(ge=0, le=1)  # problems of 3+ steps with two independent branches
    distractors: list[int]                   # [low, high] facts per problem the question does not need
    shuffle: bool | int  # statement order: false, true (uniform) or window k >= 1
    hub: dict[str, Any] | None = None  # paper profile: hub data sets (see reasonlab.world.hub)

    @model_validator(mode="after")
    def _check(self):
        _range(self.given_range, "given_range", lo=0)
        _range(self.const_range, "const_range", lo=1)
        _range(self.train_steps, "train_steps", lo=1)
        _range(self.distractors, "distractors", lo=0)
        if not isinstance(self.shuffle, bool) and self.shuffle < 1:
            raise ValueError(f"shuffle must be true, false or a window k >= 1, got {self.shuffle!r}")
        if self.given_range[1] > self.max_value:
            raise ValueError("given_range high must be <= max_value")
        if self.tiers.hard[0] <= self.train_steps[1]:
            raise ValueError("tiers.hard must have more steps than train_steps ever shows")
        if max(self.tiers.hard[1], self.train_steps[1]) + 2 + self.distractors[1] > 24:
            raise ValueError("steps + 2 givens + distractors must fit the 24 names")
        return self


class ModelParams(ArchParams):
    dialect: Literal[tuple(DIALECTS)]
    role: Literal["small", "oracle", "reasoner"] = "small"
    other_dialect_share: float = Field(default=0.1, ge=0, le=1)
    train: dict[str, Any] = Field(default_factory=dict)  # per-model overrides of `pretrain`

    @model_validator(mode="after")
    def _check(self):
        unknown = set(self.train) - set(TrainParams.model_fields)
        if unknown:
            raise ValueError(f"train: unknown keys {sorted(unknown)}")
        return self


class EvalParams(SampledEval):
    limit: int | None = Field(default=None, gt=0)  # first N problems of each tier
    backend: Literal["auto", "transformers", "vllm"] = "auto"


class ReportParams(Strict):
    sample_pid: int = Field(ge=0)


class Params(Strict):
    profile_name: str
    seed: int = Field(ge=0)
    world: WorldParams
    pretrain: TrainParams
    models: dict[str, ModelParams]
    eval: EvalParams
    report: ReportParams
    # each paper's section, typed and checked by the paper's subclass (see the module docstring)
    quant: dict[str, Any]
    paradox: dict[str, Any]

    @model_validator(mode="after")
    def _check(self):
        for name, m in self.models.items():
            merged = {**self.pretrain.model_dump(), **m.train}
            try:
                TrainParams(**merged)
            except ValidationError as e:
                raise ValueError(f"models.{name}.train: {_fmt(e)}") from None
        for section in (self.quant, self.paradox):  # a paper's section, once its subclass types it
            if hasattr(section, "check_models"):
                section.check_models(self.models)
        return self

    def train_params(self, model: str) -> TrainParams:
        return TrainParams(**{**self.pretrain.model_dump(), **self.model(model).train})

    def model(self, name: str) -> ModelParams:
        try:
            return self.models[name]
        except KeyError:
            raise ParamsError(f"models.{name}: no such model; known: {sorted(self.models)}") from None


def _fmt(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        val = err.get("input")
        shown = "" if isinstance(val, dict) else f" (got {val!r})"
        parts.append(f"{loc}: {err['msg']}{shown}" if loc else f"{err['msg']}")
    return "; ".join(parts)


ParamsT = TypeVar("ParamsT", bound=Params)


def parse_params(data: dict, source: str = "params.yaml", cls: type[ParamsT] = Params) -> ParamsT:
    """``data`` (params.yaml's contents) as ``cls``: :class:`Params` or a paper's subclass of it."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level")
    try:
        return cls(**data)
    except ValidationError as e:
        raise ParamsError(f"{source}: {_fmt(e)}") from None


def load_params(path: str | Path = "params.yaml", cls: type[ParamsT] = Params) -> ParamsT:
    """The params file at ``path`` as ``cls`` (see :func:`parse_params`)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    return parse_params(data, str(path), cls)
