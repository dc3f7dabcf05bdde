"""Unit tests for reasonlab.quant (scheme, fake quantization / STE) and the loss module (CE, DFT, KD, Bradley-Terry)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from compressed_tensors.quantization import QuantizationStatus, fake_quantize
from torch import nn

from reasonlab.quant.fakequant import (
    FakeQuantLinear,
    dequantize_codes,
    fake_quant,
    fakequant_modules,
    minmax_qparams,
    prepare_qat,
    quantize_codes,
    round_ste,
)
from reasonlab.models.losses import (
    build_loss,
    ce_loss,
    kd_forward_kl,
    kd_jsd,
    kd_reverse_kl,
    mixed,
)
from reasonlab.quant.scheme import PACKED_FORMAT, QuantScheme, targeted_modules

ALL_SCHEMES = [QuantScheme(b, 32, s) for b in (2, 3, 4, 8) for s in (False, True)]


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- scheme
class TestScheme:
    def test_defaults_and_grid(self):
        s = QuantScheme(bits=4, group_size=32)
        assert (s.qmin, s.qmax) == (-8, 7)
        assert s.symmetric is False and s.targets == ("Linear",) and s.ignore == ("lm_head",)
        assert s.name == "w4g32asym"
        assert QuantScheme(2, 16, True).name == "w2g16sym"
        assert (QuantScheme(3, 32).qmin, QuantScheme(3, 32).qmax) == (-4, 3)

    @pytest.mark.parametrize(
        "kwargs, field",
        [
            (dict(bits=5, group_size=32), "bits"),
            (dict(bits=True, group_size=32), "bits"),
            (dict(bits=4.0, group_size=32), "bits"),
            (dict(bits=4, group_size=0), "group_size"),
            (dict(bits=4, group_size=-32), "group_size"),
            (dict(bits=4, group_size=32.0), "group_size"),
            (dict(bits=4, group_size=32, symmetric="yes"), "symmetric"),
            (dict(bits=4, group_size=32, targets=()), "targets"),
            (dict(bits=4, group_size=32, targets=("Linear", 3)), "targets"),
            (dict(bits=4, group_size=32, ignore=[""]), "ignore"),
        ],
    )
    def test_validation_names_field(self, kwargs, field):
        with pytest.raises(ValueError, match=field):
            QuantScheme(**kwargs)

    def test_frozen_and_list_coercion(self):
        s = QuantScheme(4, 32, targets=["Linear"], ignore="lm_head")
        assert s.targets == ("Linear",) and s.ignore == ("lm_head",)
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.bits = 8  # type: ignore[misc]
        assert hash(s) == hash(QuantScheme(4, 32))

    def test_dict_roundtrip(self):
        s = QuantScheme(3, 64, True, ignore=("lm_head", "re:.*down_proj$"))
        assert QuantScheme.from_dict(s.to_dict()) == s
        with pytest.raises(ValueError, match="unknown"):
            QuantScheme.from_dict({"bits": 4, "group_size": 32, "nbits": 3})

    def test_compressed_tensors_config(self):
        s = QuantScheme(3, 32, symmetric=True)
        args = s.quantization_args()
        assert (args.num_bits, args.type, args.strategy, args.group_size, args.symmetric) == (
            3,
            "int",
            "group",
            32,
            True,
        )
        assert s.matches_args(args) and not QuantScheme(4, 32, True).matches_args(args)
        group = s.config_groups()["group_0"]
        assert group.targets == ["Linear"] and group.weights == args
        assert group.input_activations is None and group.output_activations is None
        cfg = s.quantization_config()
        assert cfg.ignore == ["lm_head"] and cfg.format == PACKED_FORMAT
        assert cfg.quantization_status == QuantizationStatus.FROZEN
        assert s.modifier_kwargs()["ignore"] == ["lm_head"]

    def test_targeted_modules(self):
        model = _TinyNet()
        names = [n for n, _ in targeted_modules(model, QuantScheme(4, 32))]
        assert names == ["proj", "mlp.0", "mlp.2"]  # lm_head ignored, embedding never a Linear
        names = [n for n, _ in targeted_modules(model, QuantScheme(4, 32, ignore=("lm_head", "mlp.2")))]
        assert names == ["proj", "mlp.0"]
        with pytest.raises(ValueError, match="group_size"):
            targeted_modules(model, QuantScheme(4, 48))
        with pytest.raises(ValueError, match="matches no module"):
            targeted_modules(model, QuantScheme(4, 32, targets=("Conv2d",)))

    def test_tied_lm_head_rejected(self):
        model = _TinyNet()
        model.lm_head.weight = model.embed.weight
        with pytest.raises(ValueError, match="tied"):
            targeted_modules(model, QuantScheme(4, 32, ignore=()))


class _TinyNet(nn.Module):
    """Embedding -> Linear -> MLP -> lm_head, enough to exercise targeting and QAT."""

    def __init__(self, vocab: int = 50, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.proj = nn.Linear(hidden, hidden, bias=True)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.embed(ids))
        return self.lm_head(h + self.mlp(h))


# ----------------------------------------------------------------------- fake quant
def _random_weight(out: int = 16, inp: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g) * 0.05
    w[0, :32] = w[0, :32].abs()  # an all-positive group: 0 must still be representable
    w[1, 32:] = 0.0  # an all-zero group: scale becomes eps
    return w


@pytest.mark.parametrize("scheme", ALL_SCHEMES, ids=lambda s: s.name)
class TestFakeQuant:
    def test_matches_compressed_tensors_bitwise(self, scheme):
        w = _random_weight()
        scale, zp = minmax_qparams(w, scheme)
        assert scale.shape == zp.shape == (16, 2) and zp.dtype == torch.int8
        if scheme.symmetric:
            assert bool((zp == 0).all())
        ours = fake_quant(w, scale, zp, scheme)
        theirs = fake_quantize(w, scale, zp, scheme.quantization_args())
        assert torch.equal(ours, theirs)
        # also with arbitrary (non min-max) scales, as after GPTQ/AWQ or LSQ updates
        scale2 = scale * torch.empty_like(scale).uniform_(0.5, 1.5)
        assert torch.equal(
            fake_quant(w, scale2, zp, scheme), fake_quantize(w, scale2, zp, scheme.quantization_args())
        )

    def test_on_grid_and_idempotent(self, scheme):
        w = _random_weight(seed=1)
        scale, zp = minmax_qparams(w, scheme)
        wq = fake_quant(w, scale, zp, scheme)
        assert torch.equal(fake_quant(wq, scale, zp, scheme), wq)
        grid = wq.unflatten(-1, (2, 32)) / scale.unsqueeze(-1) + zp.unsqueeze(-1)
        assert torch.allclose(grid, grid.round(), atol=1e-4)
        assert grid.round().min() >= scheme.qmin and grid.round().max() <= scheme.qmax
        codes = quantize_codes(w, scale, zp, scheme)
        assert codes.dtype == torch.int8
        assert int(codes.min()) >= scheme.qmin and int(codes.max()) <= scheme.qmax
        assert torch.equal(dequantize_codes(codes, scale, zp, scheme), wq)
        # min-max grid: the quantization error is at most half a step (nothing clipped)
        step = scale.repeat_interleave(32, dim=1)
        assert bool(((wq - w).abs() <= 0.5 * step + 1e-7).all())

    def test_ste_gradient(self, scheme):
        w = _random_weight(seed=2).requires_grad_(True)
        scale, zp = minmax_qparams(w, scheme)
        upstream = torch.randn_like(w)
        (fake_quant(w, scale, zp, scheme) * upstream).sum().backward()
        assert w.grad is not None and torch.isfinite(w.grad).all()
        # identity gradient wherever the rounded code is not clipped
        codes = (w.detach().unflatten(-1, (2, 32)) / scale.unsqueeze(-1) + zp.unsqueeze(-1)).round()
        inside = ((codes >= scheme.qmin) & (codes <= scheme.qmax)).flatten(-2)
        assert inside.float().mean() > 0.97  # min-max: only a positive max can clip (symmetric)
        assert torch.allclose(w.grad[inside], upstream[inside], rtol=1e-5, atol=0)  # s * (1/s)
        assert bool((w.grad[~inside] == 0).all())


def test_round_ste():
    x = torch.tensor([0.5, 1.5, -2.5, 0.49], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [0.0, 2.0, -2.0, 0.0]  # ties to even, like compressed-tensors
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_fake_quant_shape_errors():
    s = QuantScheme(4, 32)
    w = torch.randn(8, 64)
    scale, zp = minmax_qparams(w, s)
    with pytest.raises(ValueError, match="scale"):
        fake_quant(w, scale[:, :1], zp, s)
    with pytest.raises(ValueError, match="group_size"):
        minmax_qparams(torch.randn(8, 48), s)


class TestFakeQuantLinear:
    def test_forward_matches_quantized_weight(self):
        s = QuantScheme(4, 32)
        lin = nn.Linear(64, 32, bias=True)
        fq = FakeQuantLinear.from_linear(lin, s)
        assert fq.weight is lin.weight and fq.bias is lin.bias  # parameters reused
        x = torch.randn(3, 64)
        scale, zp = minmax_qparams(lin.weight, s)
        expected = F.linear(x, fake_quantize(lin.weight.detach(), scale, zp, s.quantization_args()), lin.bias)
        assert torch.equal(fq(x), expected)
        assert isinstance(fq, nn.Linear) and "w4g32asym" in repr(fq)
        assert dict(fq.named_buffers()).keys() == {"weight_scale", "weight_zero_point"}
        codes = fq.integer_weight()
        assert codes.dtype == torch.int8 and codes.shape == (32, 64)
        plain = fq.to_linear()
        assert type(plain) is nn.Linear and torch.equal(plain(x), fq(x))

    def test_weight_gradient_flows(self):
        fq = FakeQuantLinear.from_linear(nn.Linear(64, 16), QuantScheme(2, 32))
        fq(torch.randn(5, 64)).pow(2).sum().backward()
        assert fq.weight.grad is not None and fq.weight.grad.abs().sum() > 0
        assert fq.bias.grad is not None

    @pytest.mark.parametrize("symmetric", [False, True])
    def test_learnable_scales(self, symmetric):
        s = QuantScheme(3, 32, symmetric)
        lin = nn.Linear(64, 16)
        static = FakeQuantLinear.from_linear(lin, s)  # shares lin's parameters
        fq = FakeQuantLinear.from_linear(lin, s, learnable_scales=True)
        names = {n for n, _ in fq.named_parameters()}
        assert "weight_scale" in names
        assert ("weight_zero_point" in names) is (not symmetric)
        x = torch.randn(4, 64)
        assert torch.equal(fq(x), static(x))  # the LSQ gradient scale does not change values
        fq(x).pow(2).sum().backward()
        assert fq.weight_scale.grad is not None and torch.isfinite(fq.weight_scale.grad).all()
        assert fq.weight_scale.grad.abs().sum() > 0
        # a gradient step on the scale changes the output, and the zero-point stays integral
        with torch.no_grad():
            fq.weight_scale.mul_(1.1)
            if not symmetric:
                fq.weight_zero_point.add_(0.3)
        assert not torch.equal(fq(x), static(x))
        _, zp = fq.qparams()
        assert torch.equal(zp, zp.round())
        assert fq.export_qparams()[1].dtype == torch.int8

    def test_lsq_grad_scale_factor(self):
        s = QuantScheme(4, 32)
        torch.manual_seed(0)
        lin = nn.Linear(64, 8)
        x = torch.randn(4, 64)
        grads = []
        for flag in (False, True):
            fq = FakeQuantLinear.from_linear(lin, s, learnable_scales=True, lsq_grad_scale=flag)
            fq(x).sum().backward()
            grads.append(fq.weight_scale.grad.clone())
            lin.weight.grad = None
        assert torch.allclose(grads[1], grads[0] / math.sqrt(32 * 7))

    def test_dynamic_scales_follow_weights(self):
        s = QuantScheme(4, 32)
        fq = FakeQuantLinear.from_linear(nn.Linear(64, 8), s, dynamic_scales=True)
        with torch.no_grad():
            fq.weight.mul_(3.0)
        x = torch.randn(2, 64)
        scale, zp = minmax_qparams(fq.weight, s)
        expected = F.linear(x, fake_quantize(fq.weight.detach(), scale, zp, s.quantization_args()), fq.bias)
        assert torch.equal(fq(x), expected)
        assert torch.equal(fq.weight_scale, scale)
        with pytest.raises(ValueError, match="exclusive"):
            FakeQuantLinear.from_linear(nn.Linear(64, 8), s, dynamic_scales=True, learnable_scales=True)


class TestPrepareQat:
    def test_replaces_targets_only(self):
        model = _TinyNet()
        ids = torch.randint(0, 50, (2, 7))
        prepare_qat(model, QuantScheme(4, 32), init="fp")
        assert sorted(n for n, _ in fakequant_modules(model)) == ["mlp.0", "mlp.2", "proj"]
        assert type(model.lm_head) is nn.Linear and type(model.embed) is nn.Embedding
        model(ids).sum().backward()
        assert model.proj.weight.grad is not None and model.embed.weight.grad is not None
        with pytest.raises(ValueError, match="already"):
            prepare_qat(model, QuantScheme(4, 32))

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(init="rtn"), "init"),
            (dict(init="ptq"), "ptq_model"),
            (dict(init="fp", ptq_model=_TinyNet()), "ptq_model"),
            (dict(init="ptq", ptq_model=_TinyNet(), dynamic_scales=True), "dynamic_scales"),
            (dict(init="ptq", ptq_model="/nonexistent/dir"), "ptq_model"),
        ],
    )
    def test_argument_errors(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            prepare_qat(_TinyNet(), QuantScheme(4, 32), **kwargs)

    def test_ptq_init_needs_quantized_source(self):
        with pytest.raises(ValueError, match="different layers"):
            prepare_qat(_TinyNet(), QuantScheme(4, 32), init="ptq", ptq_model=_TinyNet())

    def test_state_dict_resume(self):
        """A QAT checkpoint (state_dict) restores into a freshly prepared model."""
        s = QuantScheme(3, 32)
        trained = prepare_qat(_TinyNet(), s, learnable_scales=True)
        with torch.no_grad():
            trained.proj.weight_scale.mul_(1.2)
            trained.mlp[0].weight_zero_point.add_(1.0)
        state = trained.state_dict()
        assert {"proj.weight_scale", "proj.weight_zero_point"} <= set(state)
        resumed = prepare_qat(_TinyNet(), s, learnable_scales=True)
        resumed.load_state_dict(state)
        ids = torch.randint(0, 50, (2, 5))
        assert torch.equal(resumed(ids), trained(ids))

    def test_ptq_init_from_qat_model(self):
        s = QuantScheme(4, 32, symmetric=True)
        source = prepare_qat(_TinyNet(), s, init="fp", learnable_scales=True)
        with torch.no_grad():
            source.proj.weight_scale.mul_(0.9)
        target = prepare_qat(_TinyNet(), s, init="ptq", ptq_model=source)
        ids = torch.randint(0, 50, (2, 5))
        assert torch.equal(target(ids), source(ids))
        with pytest.raises(ValueError, match="num_bits"):
            prepare_qat(_TinyNet(), QuantScheme(8, 32, symmetric=True), init="ptq", ptq_model=source)


# --------------------------------------------------------------------------- losses
def _logits(seed: int, shape=(2, 5, 11), scale: float = 3.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


class TestLosses:
    def test_ce_matches_torch_and_ignores(self):
        logits, targets = _logits(0), torch.randint(0, 11, (2, 5))
        targets[0, 0] = -100
        loss = ce_loss(logits, targets, None)
        assert loss.shape == (2, 5) and loss[0, 0] == 0
        ref = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        assert torch.allclose(loss, ref)

    @pytest.mark.parametrize(
        "fn",
        [
            kd_forward_kl(),
            kd_forward_kl(2.0),
            kd_reverse_kl(),
            kd_reverse_kl(0.5),
            kd_jsd(),
            kd_jsd(0.1, 2.0),
        ],
    )
    def test_kd_zero_for_identical_logits(self, fn):
        logits = _logits(1)
        loss = fn(logits, torch.zeros(2, 5, dtype=torch.long), logits.clone())
        assert loss.shape == (2, 5)
        assert torch.allclose(loss, torch.zeros_like(loss), atol=1e-6)

    @pytest.mark.parametrize("temperature", [1.0, 2.0, 0.7])
    def test_forward_kl_matches_kl_div(self, temperature):
        student, teacher = _logits(2), _logits(3)
        loss = kd_forward_kl(temperature)(student, torch.zeros(2, 5, dtype=torch.long), teacher)
        ref = (
            F.kl_div(
                F.log_softmax(student / temperature, -1),
                F.log_softmax(teacher / temperature, -1),
                reduction="none",
                log_target=True,
            ).sum(-1)
            * temperature**2
        )
        assert torch.allclose(loss, ref, atol=1e-6)
        batchmean = (
            F.kl_div(
                F.log_softmax(student.flatten(0, 1) / temperature, -1),
                F.softmax(teacher.flatten(0, 1) / temperature, -1),
                reduction="batchmean",
            )
            * temperature**2
        )
        assert torch.allclose(loss.mean(), batchmean, atol=1e-6)

    def test_reverse_kl_is_swapped_forward(self):
        student, teacher = _logits(4), _logits(5)
        t = torch.zeros(2, 5, dtype=torch.long)
        assert torch.allclose(
            kd_reverse_kl(1.5)(student, t, teacher), kd_forward_kl(1.5)(teacher, t, student)
        )
        assert not torch.allclose(kd_reverse_kl()(student, t, teacher), kd_forward_kl()(student, t, teacher))

    @pytest.mark.parametrize("beta", [0.5, 0.2, 0.9])
    def test_jsd_matches_direct_formula(self, beta):
        student, teacher = _logits(6), _logits(7)
        p, q = teacher.double().softmax(-1), student.double().softmax(-1)
        m = beta * p + (1 - beta) * q
        ref = beta * (p * (p / m).log()).sum(-1) + (1 - beta) * (q * (q / m).log()).sum(-1)
        loss = kd_jsd(beta)(student, torch.zeros(2, 5, dtype=torch.long), teacher)
        assert torch.allclose(loss.double(), ref, atol=1e-5)

    def test_jsd_symmetric_and_bounded(self):
        a, b = _logits(8, scale=10.0), _logits(9, scale=10.0)
        t = torch.zeros(2, 5, dtype=torch.long)
        jsd = kd_jsd(0.5)
        assert torch.allclose(jsd(a, t, b), jsd(b, t, a), atol=1e-6)
        assert bool((jsd(a, t, b) <= math.log(2) + 1e-6).all()) and bool((jsd(a, t, b) >= 0).all())
        # beta <-> 1 - beta with the roles swapped gives the same divergence
        assert torch.allclose(kd_jsd(0.3)(a, t, b), kd_jsd(0.7)(b, t, a), atol=1e-6)
        assert torch.allclose(kd_jsd(0.5, 2.0)(a, t, b), 4 * kd_jsd(0.5)(a / 2, t, b / 2), atol=1e-5)

    def test_mixed_and_build_loss(self):
        student, teacher = _logits(10), _logits(11)
        targets = torch.randint(0, 11, (2, 5))
        fn = mixed({"ce": 0.25, "forward_kl": 0.75}, temperature=2.0)
        expected = 0.25 * ce_loss(student, targets) + 0.75 * kd_forward_kl(2.0)(student, targets, teacher)
        assert torch.allclose(fn(student, targets, teacher), expected)
        built = build_loss("mixed", weights={"ce": 0.25, "forward_kl": 0.75}, temperature=2.0)
        assert torch.allclose(built(student, targets, teacher), expected)
        jsd = build_loss("jsd", beta=0.3)
        assert torch.allclose(jsd(student, targets, teacher), kd_jsd(0.3)(student, targets, teacher))
        assert build_loss("ce") is ce_loss
        only_ce = mixed({"ce": 1.0, "jsd": 0.0})
        assert torch.allclose(only_ce(student, targets, None), ce_loss(student, targets))

    @pytest.mark.parametrize(
        "make, match",
        [
            (lambda: kd_forward_kl(0.0), "temperature"),
            (lambda: kd_reverse_kl(-1.0), "temperature"),
            (lambda: kd_jsd(0.0), "beta"),
            (lambda: kd_jsd(1.0), "beta"),
            (lambda: mixed({}), "weights"),
            (lambda: mixed({"ce": -1.0}), "weights"),
            (lambda: mixed({"kl": 1.0}), "kl"),
            (lambda: mixed({"ce": 0.0}), "positive"),
            (lambda: build_loss("mixed"), "weights"),
            (lambda: build_loss("ce", temperature=2.0), "temperature"),
            (lambda: build_loss("focal"), "focal"),
        ],
    )
    def test_bad_parameters(self, make, match):
        with pytest.raises(ValueError, match=match):
            make()

    def test_shape_and_teacher_errors(self):
        logits = _logits(12)
        with pytest.raises(ValueError, match="teacher_logits"):
            kd_forward_kl()(logits, torch.zeros(2, 5, dtype=torch.long), None)
        with pytest.raises(ValueError, match="teacher_logits"):
            kd_jsd()(logits, torch.zeros(2, 5, dtype=torch.long), logits[:, :4])
        with pytest.raises(ValueError, match="targets"):
            ce_loss(logits, torch.zeros(2, 4, dtype=torch.long))

    @pytest.mark.parametrize(
        "fn",
        [
            ce_loss,
            kd_forward_kl(2.0),
            kd_reverse_kl(),
            kd_jsd(0.3),
            mixed({"ce": 1.0, "reverse_kl": 1.0, "jsd": 0.5}),
        ],
    )
    def test_gradients_finite(self, fn):
        student = (_logits(13, scale=30.0)).requires_grad_(True)  # large logits: saturated softmax
        teacher = _logits(14, scale=30.0)
        targets = torch.randint(0, 11, (2, 5))
        loss = fn(student, targets, teacher)
        assert torch.isfinite(loss).all()
        loss.mean().backward()
        assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0

    def test_bf16_inputs_give_float32(self):
        student, teacher = _logits(15).bfloat16(), _logits(16).bfloat16()
        loss = kd_forward_kl()(student, torch.zeros(2, 5, dtype=torch.long), teacher)
        assert loss.dtype == torch.float32
