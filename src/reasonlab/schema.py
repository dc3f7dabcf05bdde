"""The strict base class of every params section (kept apart from params.py to avoid import cycles)."""

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TIERS = ("easy", "medium", "hard")
Tier = Literal["easy", "medium", "hard"]


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

    @model_validator(mode="after")
    def _check_tiers(self):
        check_unique(self.tiers, self.tiers_key)
        return self
