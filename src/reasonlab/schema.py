"""The strict base class of every params section (kept apart from params.py to avoid import cycles)."""

from pydantic import BaseModel, ConfigDict


class ParamsError(ValueError):
    """A bad value in params.yaml; the message names the key."""


class Strict(BaseModel):
    """Rejects unknown keys (``extra="forbid"``) and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
