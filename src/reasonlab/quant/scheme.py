"""Weight-only integer quantization scheme shared by PTQ, QAT and export.

:class:`QuantScheme` is the single source of truth for *how* weights are quantized in
this repository.  It is translated into the real compressed-tensors objects
(:class:`~compressed_tensors.quantization.QuantizationArgs`,
:class:`~compressed_tensors.quantization.QuantizationScheme`,
:class:`~compressed_tensors.quantization.QuantizationConfig`) that llm-compressor's
modifiers consume and that ``config.json`` stores, so the PTQ model, the QAT fake
quantizer and the exported checkpoint all use exactly the same grid:

* integer codes ``q`` in ``[-2**(bits-1), 2**(bits-1) - 1]`` (signed, as in
  compressed-tensors), one ``(scale, zero_point)`` pair per ``group_size`` consecutive
  input channels of each output row (``strategy="group"``);
* ``symmetric=True`` forces ``zero_point == 0``;
* only modules matching ``targets`` and not matching ``ignore`` are quantized, using
  compressed-tensors' matching rules (a class name such as ``"Linear"``, an exact
  module name such as ``"lm_head"``, or a regex prefixed with ``"re:"``).  Embeddings
  are not ``nn.Linear`` and therefore stay in full precision, and ``lm_head`` stays in
  full precision as long as it is in ``ignore`` (the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from compressed_tensors.quantization import (
    QuantizationArgs,
    QuantizationConfig,
    QuantizationScheme,
    QuantizationStatus,
)
from compressed_tensors.utils import match_named_modules
from torch import nn

from .config import SUPPORTED_BITS

__all__ = [
    "SUPPORTED_BITS",
    "scheme_for",
    "WEIGHT_OBSERVER",
    "PACKED_FORMAT",
    "QuantScheme",
    "targeted_modules",
]


#: Observer used for weights; it is what llm-compressor uses for RTN weights anyway
#: (it rewrites ``"minmax"`` to this for weights) and it is what QAT ``init="fp"`` uses.
WEIGHT_OBSERVER = "memoryless_minmax"

#: On-disk compressed-tensors format: low-bit integers densely packed into int32.
PACKED_FORMAT = "pack-quantized"

_CONFIG_GROUP = "group_0"


def _as_str_tuple(value: Any, field: str) -> tuple[str, ...]:
    """Coerce a str / iterable of str into a tuple of str, or raise naming ``field``."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ValueError(f"QuantScheme.{field} must be a sequence of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"QuantScheme.{field} must contain non-empty strings, got {item!r} in {items!r}")
    return items


@dataclass(frozen=True)
class QuantScheme:
    """Weight-only, group-wise integer quantization scheme.

    Args:
        bits: bit width of the integer codes; one of :data:`SUPPORTED_BITS`.
        group_size: number of consecutive input channels sharing one scale/zero-point.
            Must divide the ``in_features`` of every targeted layer.
        symmetric: if true the zero-point is fixed at 0 (scale from ``max|w|``),
            otherwise an integer zero-point is fitted from ``min(w)``/``max(w)``.
        targets: compressed-tensors targets to quantize (default: every ``nn.Linear``).
        ignore: compressed-tensors targets to keep in full precision
            (default: ``lm_head``).

    Raises:
        ValueError: naming the offending field when a value is invalid.
    """

    bits: int
    group_size: int
    symmetric: bool = False
    targets: tuple[str, ...] = ("Linear",)
    ignore: tuple[str, ...] = ("lm_head",)

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise ValueError(f"QuantScheme.bits must be an int, got {self.bits!r}")
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"QuantScheme.bits must be one of {SUPPORTED_BITS}, got {self.bits}")
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int):
            raise ValueError(f"QuantScheme.group_size must be an int, got {self.group_size!r}")
        if self.group_size <= 0:
            raise ValueError(f"QuantScheme.group_size must be positive, got {self.group_size}")
        if not isinstance(self.symmetric, bool):
            raise ValueError(f"QuantScheme.symmetric must be a bool, got {self.symmetric!r}")
        targets = _as_str_tuple(self.targets, "targets")
        if not targets:
            raise ValueError("QuantScheme.targets must not be empty")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "ignore", _as_str_tuple(self.ignore, "ignore"))

    # ------------------------------------------------------------------ grid
    @property
    def qmin(self) -> int:
        """Smallest integer code (compressed-tensors uses a signed range)."""
        return -(2 ** (self.bits - 1))

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1

    @property
    def name(self) -> str:
        """Short identifier, e.g. ``"w4g32asym"``, usable in paths and metric keys."""
        return f"w{self.bits}g{self.group_size}{'sym' if self.symmetric else 'asym'}"

    # ------------------------------------------------- compressed-tensors objects
    def quantization_args(self) -> QuantizationArgs:
        """Weight :class:`QuantizationArgs` (int, ``strategy="group"``, min-max observer)."""
        return QuantizationArgs(
            num_bits=self.bits,
            type="int",
            symmetric=self.symmetric,
            strategy="group",
            group_size=self.group_size,
            observer=WEIGHT_OBSERVER,
        )

    def quantization_scheme(self) -> QuantizationScheme:
        """Weights-only :class:`QuantizationScheme` applied to :attr:`targets`."""
        return QuantizationScheme(targets=list(self.targets), weights=self.quantization_args())

    def config_groups(self) -> dict[str, QuantizationScheme]:
        """``config_groups`` for llm-compressor modifiers / :class:`QuantizationConfig`."""
        return {_CONFIG_GROUP: self.quantization_scheme()}

    def modifier_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``QuantizationModifier`` / ``GPTQModifier``."""
        return {"config_groups": self.config_groups(), "ignore": list(self.ignore)}

    def quantization_config(
        self,
        status: QuantizationStatus = QuantizationStatus.FROZEN,
        format: str = PACKED_FORMAT,
    ) -> QuantizationConfig:
        """Model-level :class:`QuantizationConfig` (what ``config.json`` stores)."""
        return QuantizationConfig(
            config_groups=self.config_groups(),
            ignore=list(self.ignore),
            quantization_status=status,
            format=format,
        )

    def matches_args(self, args: QuantizationArgs) -> bool:
        """Whether compressed-tensors weight ``args`` describe the same grid as this scheme."""
        return (
            args.num_bits == self.bits
            and args.type == "int"
            and args.symmetric == self.symmetric
            and args.strategy == "group"
            and args.group_size == self.group_size
        )

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-friendly dict (tuples become lists)."""
        out = asdict(self)
        out["targets"] = list(self.targets)
        out["ignore"] = list(self.ignore)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantScheme:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        unknown = set(data) - {"bits", "group_size", "symmetric", "targets", "ignore"}
        if unknown:
            raise ValueError(f"unknown QuantScheme field(s): {sorted(unknown)}")
        return cls(**dict(data))


def targeted_modules(model: nn.Module, scheme: QuantScheme) -> list[tuple[str, nn.Linear]]:
    """Modules of ``model`` that ``scheme`` quantizes, in ``named_modules`` order.

    Uses compressed-tensors' own matcher, so the set is exactly what llm-compressor
    quantizes.  Also validates the scheme against the model.

    Raises:
        ValueError: if nothing matches, if a match is not an ``nn.Linear``, if
            ``group_size`` does not divide a layer's ``in_features``, or if a targeted
            layer shares its weight with an embedding (tied ``lm_head``).
    """
    matched = list(match_named_modules(model, list(scheme.targets), list(scheme.ignore)))
    if not matched:
        raise ValueError(
            f"QuantScheme.targets={scheme.targets!r} (ignore={scheme.ignore!r}) matches no "
            f"module of {type(model).__name__}"
        )
    embedding_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out: list[tuple[str, nn.Linear]] = []
    for name, module in matched:
        if not isinstance(module, nn.Linear):
            raise ValueError(
                f"QuantScheme.targets matched {name!r} of type {type(module).__name__}; "
                "only nn.Linear layers can be quantized"
            )
        in_features = module.weight.shape[-1]
        if in_features % scheme.group_size != 0:
            raise ValueError(
                f"QuantScheme.group_size={scheme.group_size} does not divide in_features="
                f"{in_features} of layer {name!r}; pick a divisor or add the layer to ignore"
            )
        if id(module.weight) in embedding_weights:
            raise ValueError(
                f"layer {name!r} shares its weight with an input embedding (tied "
                "embeddings); keep it in QuantScheme.ignore or untie the embeddings"
            )
        out.append((name, module))
    return out


def scheme_for(qc, bits: int) -> QuantScheme:
    """The scheme of ``quant`` params ``qc`` (:class:`~reasonlab.quant.config.QuantConfig`) at ``bits``."""
    return QuantScheme(bits=int(bits), group_size=qc.group_size, symmetric=qc.symmetric)
