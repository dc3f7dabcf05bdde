"""The vocabulary every params section shares (torch-free, imported by every config module).

* :class:`Strict` the base class of every section: unknown keys are rejected (``extra="forbid"``);
* :data:`TIERS` the test tiers, the one source of their names;
* :class:`TrainParams` the one training-loop schema (pretraining, oracle modes, reward model,
  students, QAT all nest it);
* :class:`ArchParams` the size of a model built from scratch (the zoo, the reward model);
* :class:`SampledEval` Avg@k evaluation settings.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TIERS = ("easy", "medium", "hard")
Tier = Literal[TIERS]
ARCHS = ("llama", "qwen2", "qwen3", "gpt_neox")


class ParamsError(ValueError):
    """A bad value in params.yaml; the message names the key."""


class Strict(BaseModel):
    """Rejects unknown keys (``extra="forbid"``) and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_unique(values: list, key: str) -> None:
    """Raise ``ValueError`` naming ``key`` when ``values`` is empty or repeats a value."""
    if not values:
        raise ValueError(f"{key} must not be empty")
    dup = sorted({v for v in values if values.count(v) > 1}, key=str)
    if dup:
        raise ValueError(f"{key} has duplicates {dup}")


class TrainParams(Strict):
    """Settings of the one training loop (:func:`reasonlab.models.train.train`).

    The budget is either ``steps`` or ``epochs`` (over the examples, resolved by :meth:`resolve`),
    the warmup either ``warmup`` steps or a ``warmup_ratio`` of the steps (default none).
    """

    steps: int | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0, le=1)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup: int | None = Field(default=None, ge=0)
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    ckpt_every: int = Field(default=50, gt=0)
    log_every: int = Field(default=10, gt=0)
    max_len: int = Field(default=256, gt=8)

    @model_validator(mode="after")
    def _check(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps and epochs")
        if self.warmup is not None and self.warmup_ratio is not None:
            raise ValueError("give at most one of warmup and warmup_ratio")
        if self.steps is not None and self.warmup is not None and self.warmup >= self.steps:
            raise ValueError(f"warmup={self.warmup} must be smaller than steps={self.steps}")
        return self

    def resolve(self, n_examples: int) -> "TrainParams":
        """These settings with ``steps`` and ``warmup`` fixed for ``n_examples`` training examples.

        ``epochs``: ``ceil(epochs * n_examples / batch_size)`` steps (at least 1), the same budget
        rule for every set trained on the same ids; ``warmup_ratio``: ``int(ratio * steps)``.
        """
        if n_examples < 1:
            raise ValueError("no examples to train on")
        steps = self.steps or max(1, math.ceil(self.epochs * n_examples / self.batch_size))
        warmup = self.warmup if self.warmup is not None else int((self.warmup_ratio or 0.0) * steps)
        return self.model_copy(update={"steps": steps, "epochs": None, "warmup": warmup, "warmup_ratio": None})


class ArchParams(Strict):
    """A model of a real ``transformers`` architecture built from scratch, or (``hub_id``) a released one."""

    arch: Literal[ARCHS] = "llama"
    hidden: int = Field(default=128, ge=16)
    layers: int = Field(default=4, ge=1)
    heads: int = Field(default=4, ge=1)
    kv_heads: int | None = None
    intermediate: int = Field(default=512, ge=16)
    hub_id: str | None = None  # paper profile: load this instead of training

    @model_validator(mode="after")
    def _check_shape(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})")
        return self


class SampledEval(Strict):
    """Avg@k evaluation by sampling: ``k`` samples at ``temperature`` / ``top_p`` per problem of each tier.

    Subclasses set their own defaults and ``tiers_key`` (the key named in an error).
    """

    tiers_key: ClassVar[str] = "tiers"
    k: int = Field(ge=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(default=64, gt=0)
    tiers: list[Tier] = Field(default_factory=lambda: list(TIERS))
    limit: int | None = Field(default=None, gt=0)  # first N problems of each tier
    greedy: bool = True  # also one greedy decode per problem (greedy accuracy); off where nothing reads it

    @model_validator(mode="after")
    def _check_tiers(self):
        check_unique(self.tiers, self.tiers_key)
        return self
