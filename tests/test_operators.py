"""Tests for lipcli.operators: shapes, the Lanczos kernel, adjoints, seeded observations, errors."""
from __future__ import annotations

import pytest
import torch

from lipcli.errors import LipError
from lipcli.operators import Denoise, Inpaint, Operator, SuperResolution, lanczos2_kernel


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_lanczos_kernel(factor):
    k = lanczos2_kernel(factor)
    assert k.shape == (4 * factor, 4 * factor) and k.dtype == torch.float32
    assert abs(float(k.double().sum()) - 1) < 1e-6
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0)) and torch.equal(k, k.flip(1))  # phase 0.5
    assert k.max() == k[2 * factor - 1, 2 * factor - 1]  # peak at the centre taps
    assert (k < 0).any()  # Lanczos lobes, not a Gaussian


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("channels", [1, 3])
def test_sr_output_is_exactly_h_over_f(factor, channels):
    op = SuperResolution(factor)
    h, w = 8 * factor, 5 * factor
    y = op.forward(torch.rand(1, channels, h, w))
    assert y.shape == (1, channels, h // factor, w // factor)
    assert op.output_size(h // factor, w // factor) == (h, w)
    assert op.observe(torch.rand(1, channels, h, w), torch.Generator()).shape == y.shape


def test_sr_preserves_constants():
    """The kernel sums to 1 and the pad replicates, so a flat image stays flat (no dark borders)."""
    y = SuperResolution(4).forward(torch.full((1, 3, 32, 48), 0.7))
    assert torch.allclose(y, torch.full_like(y, 0.7), atol=1e-5)


def test_sr_observe_needs_divisible_sides():
    with pytest.raises(LipError, match="divisible by 4"):
        SuperResolution(4).observe(torch.rand(1, 3, 37, 53), torch.Generator())


@pytest.mark.parametrize("factor", [3, 1, 0, 16, -2])
def test_bad_scale_raises(factor):
    with pytest.raises(LipError, match="not supported"):
        SuperResolution(factor)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_sr_adjoint_identity(factor):
    op = SuperResolution(factor)
    gen = torch.Generator().manual_seed(factor)
    x = torch.randn(1, 3, 4 * factor, 6 * factor, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 3, 4, 6, generator=gen, dtype=torch.float64)
    aty = op.adjoint(y, x.shape)
    assert aty.shape == x.shape and aty.dtype == torch.float64
    lhs, rhs = _dot(op.forward(x), y), _dot(x, aty)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_sr_adjoint_identity_float32():
    op = SuperResolution(2)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 1, 20, 14, generator=gen), torch.rand(1, 1, 10, 7, generator=gen)
    lhs, rhs = _dot(op.forward(x), y), _dot(x, op.adjoint(y, x.shape))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_inpaint_adjoint_identity_and_shapes(mask_channels):
    op = Inpaint.bernoulli((mask_channels, 9, 11), keep=0.5, seed=0)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 9, 11, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 3, 9, 11, generator=gen, dtype=torch.float64)
    ax = op.forward(x)
    assert ax.shape == x.shape
    lhs, rhs = _dot(ax, y), _dot(x, op.adjoint(y, x.shape))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    # The explicit adjoint agrees with the generic autograd one.
    assert torch.allclose(op.adjoint(y, x.shape).double(), Operator.adjoint(op, y, x.shape))
    assert op.output_size(9, 11) == (9, 11)


def test_identity_operator_adjoint():
    x = torch.randn(1, 3, 5, 7, dtype=torch.float64)
    assert torch.equal(Operator().adjoint(x, x.shape), x)


def test_inpaint_masks_exactly():
    op = Inpaint.bernoulli((3, 40, 40), keep=0.3, seed=5)
    x = torch.rand(1, 3, 40, 40) + 0.1
    ax = op.forward(x)
    keep = op.mask.bool().expand_as(x)
    assert torch.equal(ax[keep], x[keep]) and (ax[~keep] == 0).all()
    assert 0.2 < float(op.mask.mean()) < 0.4
    assert op.params()["observed"] == round(float(op.mask.mean()), 6)


def test_inpaint_bernoulli_is_seeded():
    a = Inpaint.bernoulli((1, 16, 16), 0.5, seed=1).mask
    assert torch.equal(a, Inpaint.bernoulli((1, 16, 16), 0.5, seed=1).mask)
    assert not torch.equal(a, Inpaint.bernoulli((1, 16, 16), 0.5, seed=2).mask)
    assert Inpaint.bernoulli((1, 4, 4), 1.0, seed=0).mask.all()


@pytest.mark.parametrize("keep", [0, -0.1, 1.5])
def test_inpaint_bad_keep_raises(keep):
    with pytest.raises(LipError, match="--keep"):
        Inpaint.bernoulli((1, 4, 4), keep, seed=0)


def test_denoise_observe_is_seeded_and_clipped():
    op = Denoise(25)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = op.observe(x, torch.Generator().manual_seed(7))
    b = op.observe(x, torch.Generator().manual_seed(7))
    c = op.observe(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert (a == 0).any() and (a == 1).any()  # clipping actually happens at sigma 25
    # The noise level is sigma/255 (measured away from the clipped ends).
    mid = (x > 0.3) & (x < 0.7)
    assert abs(float((a - x)[mid].std()) - 25 / 255) < 0.01
    assert torch.equal(op.forward(x), x)


def test_denoise_observe_does_not_touch_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    Denoise(50).observe(torch.rand(1, 1, 8, 8, generator=torch.Generator()), torch.Generator())
    assert torch.equal(torch.rand(3), expected)


def test_denoise_sigma_zero_is_identity_and_range_checked():
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(Denoise(0).observe(x, torch.Generator()), x)
    for bad in (-1, 256):
        with pytest.raises(LipError, match="--sigma"):
            Denoise(bad)


def test_loss_is_mse_in_observation_space():
    op = SuperResolution(2)
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 8, 8)
    assert torch.allclose(op.loss(x, y), ((op.forward(x) - y) ** 2).mean())


def test_params_are_json_friendly():
    import json
    for op in (Denoise(25), SuperResolution(4), Inpaint.bernoulli((1, 4, 4), 0.5, 0)):
        json.dumps(op.params())
    assert SuperResolution(8).params() == {"name": "sr", "scale": 8, "kernel": "lanczos2"}
    assert Denoise(15).params() == {"name": "denoise", "sigma": 15}
