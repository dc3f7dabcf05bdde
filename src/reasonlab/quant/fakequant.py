"""Fake quantization with a straight-through estimator (STE) for QAT.

The fake quantizer reproduces compressed-tensors' group-wise integer grid *bit for
bit*, so that a QAT model initialised from a PTQ model (RTN, GPTQ or AWQ, in memory
or loaded from the packed checkpoint) produces exactly the PTQ model's logits at step
0, and so that :func:`reasonlab.quant.export.export_qat` can write the trained weights
as real packed integers without any re-rounding drift.  For one group with scale ``s``
and integer zero-point ``z`` (``z == 0`` when symmetric), compressed-tensors computes::

    q     = round(clamp(w / s + z, qmin, qmax))     # torch.round: half to even
    w_hat = (q - z) * s                             # qmin = -2**(b-1), qmax = 2**(b-1)-1

with ``s, z`` from ``calculate_qparams`` on the group's min/max (the range is widened
to include 0; symmetric: ``s = max|w| / ((qmax - qmin) / 2)``; asymmetric:
``s = (max - min) / (qmax - qmin)``, ``z = round(clamp(qmin - min / s, qmin, qmax))``;
zero scales become ``eps``).  :func:`fake_quant` evaluates the same expression with the
same operations in the same order and dtype, and :func:`minmax_qparams` calls
compressed-tensors' ``calculate_qparams`` itself.

Why not torchao's QAT (``IntxFakeQuantizeConfig`` / ``FakeQuantizedLinear``)?  torchao
0.18 was checked and does not reproduce this grid:

* its asymmetric per-group qparams (``get_groupwise_affine_qparams``) use the unsigned
  range ``[0, 2**b - 1]``, do not force 0 into the range and, with the default
  ``ZeroPointDomain``, keep a *float* zero-point, so the grid differs from
  compressed-tensors';
* even when given compressed-tensors' scale and zero-point, its quantize op computes
  ``clamp(round(w * (1 / s)) + z)``, i.e. a reciprocal multiply and rounding *before*
  adding ``z``, which differs from ``round(clamp(w / s + z))`` in the last ulp and at
  ties, so codes (and logits) would not match exactly;
* loading external scales/zero-points is only possible by writing its private
  ``scale`` / ``zero_point`` attributes (range learning is a prototype).

Hence the small :class:`FakeQuantLinear` below.  Gradients:

* weights get the clipped STE: ``d w_hat / d w = 1`` where the rounded code
  ``round(w / s + z)`` lies inside ``[qmin, qmax]``, 0 where it is clipped (the
  convention of ``torch.fake_quantize_per_channel_affine``).  The forward computes
  ``clamp(round(.))``, which equals compressed-tensors' ``round(clamp(.))`` exactly
  because the bounds are integers;
* with ``learnable_scales=True`` the scale (and, if asymmetric, the zero-point) are
  ``nn.Parameter`` s trained LSQ/LSQ+-style: the gradient flows through the same
  expression with ``round`` replaced by the STE, the zero-point is rounded with an STE
  so it stays an integer, and the gradients are multiplied by
  ``1 / sqrt(group_size * qmax)`` (LSQ's gradient scale; disable with
  ``lsq_grad_scale=False``).  The gradient scale is applied by an identity autograd
  function, so the forward value is unchanged (step-0 equality still holds);
* with ``dynamic_scales=True`` scales/zero-points are recomputed from the current
  latent weights by min-max at every forward (no gradient through them), like
  torchao's default dynamic QAT.  The default (static) keeps the initial qparams fixed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from compressed_tensors.quantization.utils import calculate_qparams
from torch import nn

from .qparams import QuantParams, load_quantized, read_quant_params
from .scheme import QuantScheme, targeted_modules

__all__ = [
    "FakeQuantLinear",
    "round_ste",
    "minmax_qparams",
    "fake_quant",
    "quantize_codes",
    "dequantize_codes",
    "prepare_qat",
    "fakequant_modules",
]

QATInit = Literal["fp", "ptq"]


class _RoundSTE(torch.autograd.Function):
    """``torch.round`` (half to even, as compressed-tensors) with identity gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


class _GradScale(torch.autograd.Function):
    """Identity in the forward pass, multiplies the gradient by ``factor`` (LSQ)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest (ties to even) with a straight-through (identity) gradient."""
    return _RoundSTE.apply(x)


def _check_qparam_shapes(
    weight: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: QuantScheme
) -> int:
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {tuple(weight.shape)}")
    out_features, in_features = weight.shape
    if in_features % scheme.group_size != 0:
        raise ValueError(
            f"QuantScheme.group_size={scheme.group_size} does not divide in_features={in_features}"
        )
    n_groups = in_features // scheme.group_size
    expected = (out_features, n_groups)
    if tuple(scale.shape) != expected:
        raise ValueError(f"scale must have shape {expected}, got {tuple(scale.shape)}")
    if tuple(zero_point.shape) != expected:
        raise ValueError(f"zero_point must have shape {expected}, got {tuple(zero_point.shape)}")
    return n_groups


@torch.no_grad()
def minmax_qparams(weight: torch.Tensor, scheme: QuantScheme) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-max per-group ``(scale, zero_point)`` exactly as llm-compressor's RTN computes them.

    Group min/max (what the ``memoryless_minmax`` observer records) are passed to
    compressed-tensors' ``calculate_qparams`` with the scheme's ``QuantizationArgs``.

    Returns:
        ``scale`` ``[out, in // group_size]`` in ``weight.dtype`` and ``zero_point`` of
        the same shape in ``torch.int8``.
    """
    if weight.ndim != 2 or weight.shape[-1] % scheme.group_size != 0:
        raise ValueError(
            f"QuantScheme.group_size={scheme.group_size} must divide the last dim of a 2-D "
            f"weight, got shape {tuple(weight.shape)}"
        )
    grouped = weight.detach().unflatten(-1, (weight.shape[-1] // scheme.group_size, scheme.group_size))
    scale, zero_point = calculate_qparams(
        grouped.amin(dim=-1), grouped.amax(dim=-1), scheme.quantization_args()
    )
    return scale, zero_point


def fake_quant(
    weight: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: QuantScheme
) -> torch.Tensor:
    """Quantize-dequantize ``weight`` onto the scheme's grid (differentiable, STE).

    Bitwise equal to ``compressed_tensors.quantization.fake_quantize`` for the same
    inputs, but differentiable: the gradient w.r.t. ``weight`` is the clipped STE, and
    gradients w.r.t. floating ``scale`` / ``zero_point`` follow LSQ(+) (the caller is
    responsible for keeping a learnable ``zero_point`` integer, e.g. via
    :func:`round_ste`).  Idempotent: ``fake_quant(fake_quant(w)) == fake_quant(w)``.

    Args:
        weight: ``[out, in]`` floating tensor.
        scale: ``[out, in // group_size]`` positive scales.
        zero_point: ``[out, in // group_size]`` integer-valued zero-points (any dtype).
        scheme: the quantization scheme (bits, group size).
    """
    n_groups = _check_qparam_shapes(weight, scale, zero_point, scheme)
    grouped = weight.unflatten(-1, (n_groups, scheme.group_size))
    s = scale.unsqueeze(-1)
    z = zero_point.unsqueeze(-1)
    scaled = grouped / s + z.to(weight.dtype)
    # == round(clamp(scaled)) bitwise (the bounds are integers); clamping *after* the
    # STE round puts the gradient mask on the rounded code, as torch.fake_quantize does
    q = torch.clamp(round_ste(scaled), scheme.qmin, scheme.qmax)
    dequant = (q.to(s.dtype) - z.to(s.dtype)) * s
    return dequant.flatten(-2).to(weight.dtype)


@torch.no_grad()
def quantize_codes(
    weight: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: QuantScheme
) -> torch.Tensor:
    """Integer codes ``round(clamp(w / s + z, qmin, qmax))`` as ``torch.int8`` ``[out, in]``."""
    n_groups = _check_qparam_shapes(weight, scale, zero_point, scheme)
    grouped = weight.unflatten(-1, (n_groups, scheme.group_size))
    scaled = grouped / scale.unsqueeze(-1) + zero_point.unsqueeze(-1).to(weight.dtype)
    return torch.round(torch.clamp(scaled, scheme.qmin, scheme.qmax)).flatten(-2).to(torch.int8)


@torch.no_grad()
def dequantize_codes(
    codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: QuantScheme
) -> torch.Tensor:
    """``(codes - z) * s`` in ``scale.dtype`` (inverse of :func:`quantize_codes` on the grid)."""
    n_groups = _check_qparam_shapes(codes, scale, zero_point, scheme)
    grouped = codes.unflatten(-1, (n_groups, scheme.group_size)).to(scale.dtype)
    return ((grouped - zero_point.unsqueeze(-1).to(scale.dtype)) * scale.unsqueeze(-1)).flatten(-2)


class FakeQuantLinear(nn.Linear):
    """``nn.Linear`` whose weight is fake-quantized (group-wise, STE) in every forward.

    Holds the latent weight ``weight`` (trained by QAT), ``bias``, and
    ``weight_scale`` / ``weight_zero_point`` of shape ``[out, in // group_size]`` (the
    names compressed-tensors uses).  They are ``nn.Parameter`` s when
    ``learnable_scales`` (the zero-point only for asymmetric schemes) and buffers
    otherwise.  The zero-point is stored as a float tensor holding integers.

    Build it with :meth:`from_linear`; :func:`prepare_qat` does this for a whole model.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        scheme: QuantScheme,
        scale: torch.Tensor,
        zero_point: torch.Tensor,
        *,
        learnable_scales: bool = False,
        dynamic_scales: bool = False,
        lsq_grad_scale: bool = True,
    ) -> None:
        nn.Module.__init__(self)  # nn.Linear.__init__ would allocate and randomly init a weight
        if learnable_scales and dynamic_scales:
            raise ValueError("learnable_scales and dynamic_scales are mutually exclusive")
        if not torch.is_floating_point(weight):
            raise ValueError(f"weight must be floating point, got {weight.dtype}")
        _check_qparam_shapes(weight, scale, zero_point, scheme)
        self.in_features = int(weight.shape[1])
        self.out_features = int(weight.shape[0])
        self.scheme = scheme
        self.learnable_scales = learnable_scales
        self.dynamic_scales = dynamic_scales
        self.lsq_grad_scale = lsq_grad_scale
        self.weight = weight if isinstance(weight, nn.Parameter) else nn.Parameter(weight)
        if bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = bias if isinstance(bias, nn.Parameter) else nn.Parameter(bias)

        scale = scale.detach().to(device=weight.device, dtype=weight.dtype).clone()
        zero_point = zero_point.detach().to(device=weight.device, dtype=weight.dtype).clone()
        if learnable_scales:
            self.weight_scale = nn.Parameter(scale)
        else:
            self.register_buffer("weight_scale", scale)
        if learnable_scales and not scheme.symmetric:
            self.weight_zero_point = nn.Parameter(zero_point)
        else:
            self.register_buffer("weight_zero_point", zero_point)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        scheme: QuantScheme,
        *,
        scale: torch.Tensor | None = None,
        zero_point: torch.Tensor | None = None,
        learnable_scales: bool = False,
        dynamic_scales: bool = False,
        lsq_grad_scale: bool = True,
    ) -> FakeQuantLinear:
        """Wrap ``linear`` (its ``weight``/``bias`` parameters are reused, not copied).

        ``scale``/``zero_point`` default to :func:`minmax_qparams` of ``linear.weight``.
        """
        if (scale is None) != (zero_point is None):
            raise ValueError("pass both scale and zero_point, or neither")
        if scale is None:
            scale, zero_point = minmax_qparams(linear.weight, scheme)
        assert zero_point is not None
        if scheme.symmetric and bool((zero_point != 0).any()):
            raise ValueError("symmetric QuantScheme requires zero_point == 0 everywhere")
        return cls(
            linear.weight,
            linear.bias,
            scheme,
            scale,
            zero_point,
            learnable_scales=learnable_scales,
            dynamic_scales=dynamic_scales,
            lsq_grad_scale=lsq_grad_scale,
        )

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective ``(scale, zero_point)`` used by the forward pass."""
        if self.dynamic_scales:
            scale, zero_point = minmax_qparams(self.weight, self.scheme)
            with torch.no_grad():
                self.weight_scale.copy_(scale)
                self.weight_zero_point.copy_(zero_point)
            return self.weight_scale, self.weight_zero_point
        scale, zero_point = self.weight_scale, self.weight_zero_point
        if not self.learnable_scales:
            return scale, zero_point
        scale = scale.clamp_min(torch.finfo(scale.dtype).eps)
        if not self.scheme.symmetric:
            zero_point = torch.clamp(round_ste(zero_point), self.scheme.qmin, self.scheme.qmax)
        if self.lsq_grad_scale:
            factor = 1.0 / (self.scheme.group_size * self.scheme.qmax) ** 0.5
            scale = _GradScale.apply(scale, factor)
            if isinstance(self.weight_zero_point, nn.Parameter):
                zero_point = _GradScale.apply(zero_point, factor)
        return scale, zero_point

    def fake_quantized_weight(self) -> torch.Tensor:
        """The dequantized weight used in ``forward`` (differentiable through the STE)."""
        scale, zero_point = self.qparams()
        return fake_quant(self.weight, scale, zero_point, self.scheme)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.fake_quantized_weight(), self.bias)

    @torch.no_grad()
    def export_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Detached ``(scale, zero_point)`` as stored on disk (zero-point rounded, int8)."""
        scale, zero_point = self.qparams()
        zero_point = torch.clamp(torch.round(zero_point), self.scheme.qmin, self.scheme.qmax)
        return scale.detach().clone(), zero_point.to(torch.int8)

    @torch.no_grad()
    def integer_weight(self) -> torch.Tensor:
        """Integer codes (``torch.int8``, ``[out, in]``) of the current latent weight."""
        scale, zero_point = self.export_qparams()
        return quantize_codes(self.weight, scale, zero_point, self.scheme)

    @torch.no_grad()
    def quant_params(self) -> QuantParams:
        """Latent weight and export qparams as :class:`~reasonlab.quant.qparams.QuantParams`."""
        scale, zero_point = self.export_qparams()
        return QuantParams(self.weight.detach().clone(), scale, zero_point, self.scheme.quantization_args())

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` holding the (detached) fake-quantized weight."""
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        linear.weight.copy_(self.fake_quantized_weight())
        if self.bias is not None:
            linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        mode = "learnable" if self.learnable_scales else "dynamic" if self.dynamic_scales else "static"
        return f"{super().extra_repr()}, scheme={self.scheme.name}, scales={mode}"


def fakequant_modules(model: nn.Module) -> Iterator[tuple[str, FakeQuantLinear]]:
    """``(name, module)`` for every :class:`FakeQuantLinear` in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, FakeQuantLinear):
            yield name, module


def _load_ptq_model(ptq_model: nn.Module | str | os.PathLike[str]) -> nn.Module:
    if isinstance(ptq_model, nn.Module):
        return ptq_model
    path = os.fspath(ptq_model)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(f"ptq_model={path!r} is neither a model nor a checkpoint directory")
    return load_quantized(path)


@torch.no_grad()
def _copy_parameters(dst: nn.Module, src: nn.Module) -> None:
    """Copy every parameter of ``dst`` from the same-named tensor of ``src``."""
    src_tensors = dict(src.named_parameters(remove_duplicate=False))
    src_tensors.update(dict(src.named_buffers(remove_duplicate=False)))
    missing = [n for n, _ in dst.named_parameters() if n not in src_tensors]
    if missing:
        raise ValueError(
            f"ptq_model does not match the architecture of model: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    for name, param in dst.named_parameters():
        value = src_tensors[name]
        if value.shape != param.shape:
            raise ValueError(
                f"ptq_model parameter {name!r} has shape {tuple(value.shape)}, model has {tuple(param.shape)}"
            )
        param.copy_(value.to(device=param.device, dtype=param.dtype))


def prepare_qat(
    model: nn.Module,
    scheme: QuantScheme,
    init: QATInit = "fp",
    ptq_model: nn.Module | str | os.PathLike[str] | None = None,
    learnable_scales: bool = False,
    *,
    dynamic_scales: bool = False,
    lsq_grad_scale: bool = True,
) -> nn.Module:
    """Replace the targeted ``nn.Linear`` layers of ``model`` by :class:`FakeQuantLinear` in place.

    Embeddings are never touched; ``lm_head`` is kept in full precision while it is in
    ``scheme.ignore``.

    Args:
        model: full-precision model (modified in place and returned).
        scheme: quantization scheme; its targets/ignore select the layers.
        init: ``"fp"``: keep ``model``'s weights, scales/zero-points by min-max of them
            (the RTN observer, so step 0 equals the RTN model).  ``"ptq"``: copy *all*
            parameters (AWQ also rescales norms) plus ``weight_scale`` /
            ``weight_zero_point`` of every targeted layer from ``ptq_model``, so step 0
            equals the PTQ model.
        ptq_model: required iff ``init == "ptq"``: an RTN/GPTQ/AWQ model returned by
            :func:`reasonlab.quant.ptq.run_ptq`, or a compressed checkpoint directory
            written by :func:`reasonlab.quant.ptq.save_quantized` (loaded with
            :func:`~reasonlab.quant.qparams.load_quantized`; its latent weights are then
            the dequantized grid values).  Must be a different object than ``model``.
        learnable_scales: make scales (and asymmetric zero-points) trainable (LSQ).
        dynamic_scales: recompute min-max scales from the latent weights every forward
            (only with ``init="fp"``; exclusive with ``learnable_scales``).
        lsq_grad_scale: apply LSQ's ``1/sqrt(group_size*qmax)`` gradient scale to
            learnable scales/zero-points.

    Returns:
        ``model``.

    Raises:
        ValueError: on a bad ``init``/``ptq_model`` combination, a model that is already
            prepared, a PTQ model quantized with another scheme or covering other
            layers, or an invalid scheme for the model (see
            :func:`~reasonlab.quant.scheme.targeted_modules`).
    """
    if init not in ("fp", "ptq"):
        raise ValueError(f"init must be 'fp' or 'ptq', got {init!r}")
    if init == "ptq" and ptq_model is None:
        raise ValueError("init='ptq' requires ptq_model (a PTQ model or checkpoint directory)")
    if init == "fp" and ptq_model is not None:
        raise ValueError("ptq_model is only used with init='ptq'")
    if dynamic_scales and init == "ptq":
        raise ValueError("dynamic_scales=True would discard the PTQ scales; use init='fp'")
    if next(fakequant_modules(model), None) is not None:
        raise ValueError("model already contains FakeQuantLinear layers (prepare_qat called twice?)")
    if ptq_model is model:
        raise ValueError(
            "ptq_model must not be model itself; pass a fresh full-precision instance of the "
            "same architecture as model (e.g. reload the FP checkpoint)"
        )
    if any(hasattr(m, "quantization_scheme") for m in model.modules()):
        raise ValueError(
            "model carries compressed-tensors quantization (a PTQ model?); pass a "
            "full-precision model and give the PTQ model as ptq_model"
        )

    targets = targeted_modules(model, scheme)
    qparams: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if init == "ptq":
        assert ptq_model is not None
        source = _load_ptq_model(ptq_model)
        params = read_quant_params(source)
        wanted = {name for name, _ in targets}
        if set(params) != wanted:
            raise ValueError(
                "ptq_model quantizes different layers than scheme targets: only in ptq_model "
                f"{sorted(set(params) - wanted)[:5]}, only in scheme {sorted(wanted - set(params))[:5]}"
            )
        for name, p in params.items():
            if p.args is not None and not scheme.matches_args(p.args):
                raise ValueError(
                    f"ptq_model layer {name!r} was quantized with num_bits={p.args.num_bits}, "
                    f"group_size={p.args.group_size}, symmetric={p.args.symmetric}; scheme "
                    f"is {scheme.name}"
                )
            qparams[name] = (p.scale, p.zero_point)
        _copy_parameters(model, source)

    for name, module in targets:
        scale, zero_point = qparams.get(name, (None, None))
        fq = FakeQuantLinear.from_linear(
            module,
            scheme,
            scale=scale,
            zero_point=zero_point,
            learnable_scales=learnable_scales,
            dynamic_scales=dynamic_scales,
            lsq_grad_scale=lsq_grad_scale,
        )
        model.set_submodule(name, fq)
    return model
