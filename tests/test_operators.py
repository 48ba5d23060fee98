"""Tests for lipcli.physics: every registered operator (adjointness, shapes, devices, seeded noise),
then each operator's own properties (the Lanczos kernel, masks, noise levels, errors)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from lipcli.errors import LipError
from lipcli.physics import (CS_OPERATORS, TASKS, Denoise, Identity, Inpaint, LinearPhysics, NoiseModel, Physics,
                            SuperResolution, Task, lanczos2_kernel, register_task, task_variants)
from lipcli.problem import load_problem
from lipcli.transfer import parse_tasks, task_operator

H, W = 24, 40  # non-square, sides divisible by every SR factor
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


def _build(name: str) -> Physics:
    """Every registered operator, built as its task builds it at the preset defaults (CS: 300 rows)."""
    kind, _, entry = name.partition(":")
    if kind == "task":
        task = TASKS.get(entry)
        return task.build(task.options, H, W, gray=False, inpaint_mask=None, seed=0)
    return CS_OPERATORS.get(entry)((3, H, W), 300, outliers=6, noise=0.01, seed=3)


OPERATORS = [f"task:{t}" for t in TASKS] + [f"cs:{c}" for c in CS_OPERATORS]


def _x(batch: int = 2, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("name", OPERATORS)
def test_adjointness(name):
    """<A x, y> = <x, A* y> for every linear operator, with the closed form and the autograd fallback."""
    op = _build(name)
    if not isinstance(op, LinearPhysics):
        pytest.skip("not linear")
    x = _x()
    ax = op.A(x)
    y = torch.randn(ax.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    aty = op.A_adjoint(y)
    assert aty.shape == x.shape and aty.dtype == x.dtype
    lhs, rhs = _dot(ax, y), _dot(x, aty)
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
    assert torch.allclose(aty, LinearPhysics.A_adjoint(op, y), atol=1e-10)


@pytest.mark.parametrize("name", OPERATORS)
def test_shapes(name):
    op = _build(name)
    x = _x(dtype=torch.float32)
    ax = op.A(x)
    assert ax.shape[0] == 2 and op(x, torch.Generator()).shape == ax.shape
    if isinstance(op, LinearPhysics):
        assert op.input_shape(ax.shape) == tuple(x.shape)
    assert op.output_size(*ax.shape[-2:]) == (H, W)
    assert op.row_losses(x, ax).shape == (2, ax[0].numel())
    json.dumps(op.params())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OPERATORS)
def test_device_move(name, device):
    """Operator state is in buffers: `.to` moves all of it, and a seed gives the same observation."""
    op = _build(name)
    x = _x(dtype=torch.float32)
    on_cpu = op(x, torch.Generator().manual_seed(5))
    moved = op.to(device)
    assert moved is op and all(b.device.type == device for b in op.buffers())
    y = op(x.to(device), torch.Generator().manual_seed(5))
    assert y.device.type == device and torch.allclose(y.cpu(), on_cpu, rtol=1e-5, atol=1e-5)
    assert op.A_adjoint(op.A(x.to(device))).device.type == device


@pytest.mark.parametrize("name", OPERATORS)
def test_noise_is_seeded_and_leaves_the_global_rng_alone(name):
    op = _build(name)
    x = _x(dtype=torch.float32)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = op(x, torch.Generator().manual_seed(7))
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a, op(x, torch.Generator().manual_seed(7)))
    other = op(x, torch.Generator().manual_seed(8))
    if type(op.noise_model) is NoiseModel:  # noise-free: the observation is A(x), or SR's Pillow downscale of x
        assert torch.equal(a, other) and (getattr(op, "downscale", "operator") != "operator" or torch.equal(a, op.A(x)))
    else:
        assert not torch.equal(a, other)


def test_every_task_declares_its_variants_and_degradation():
    for name, (task, extra) in task_variants().items():
        settings = {**task.options, **extra}
        assert set(task.degradation(settings, None)) >= set(extra)
        assert task.metric_name(gray=True) == "psnr"
    built_in = {"denoise": ("denoise", {}), "inpaint": ("inpaint", {}), "sr2": ("sr", {"scale": 2}),
                "sr4": ("sr", {"scale": 4}), "sr8": ("sr", {"scale": 8})}  # transfer's grid names
    assert built_in.items() <= {v: (t.name, e) for v, (t, e) in task_variants().items()}.items()


class _Halve(LinearPhysics):
    """A toy operator: A(x) = x / 2."""

    name = "halve"

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x / 2


class _HalveTask(Task):
    name = "halve"
    options: dict[str, Any] = {}

    def build(self, settings, height, width, gray, inpaint_mask, seed) -> _Halve:
        return _Halve()

    def degradation(self, settings, inpaint_mask) -> dict[str, Any]:
        return {}


def test_a_task_registered_here_is_a_problem_like_the_others(rgb64_path: Path):
    """A new task is one registration: problems, the adjoint fallback and transfer grids follow."""
    register_task(_HalveTask())
    try:
        p = load_problem(rgb64_path, "halve", {}, simulate=True, seed=0)
        assert torch.allclose(p.y, p.clean / 2) and p.metric_name == "psnr" and p.op.params() == {"name": "halve"}
        assert torch.equal(p.op.A_adjoint(p.y), p.y / 2)
        assert parse_tasks("halve,sr4") == ["halve", "sr4"] and task_operator("halve") == ("halve", {})
    finally:
        TASKS.unregister("halve")
    with pytest.raises(LipError, match="unknown task 'halve': use one of denoise, inpaint, mri, sr"):
        load_problem(rgb64_path, "halve", {}, simulate=True, seed=0)


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
    y = op.A(torch.rand(1, channels, h, w))
    assert y.shape == (1, channels, h // factor, w // factor)
    assert op.output_size(h // factor, w // factor) == (h, w)
    assert op(torch.rand(1, channels, h, w), torch.Generator()).shape == y.shape


def test_sr_preserves_constants():
    """The kernel sums to 1 and the pad replicates, so a flat image stays flat (no dark borders)."""
    y = SuperResolution(4).A(torch.full((1, 3, 32, 48), 0.7))
    assert torch.allclose(y, torch.full_like(y, 0.7), atol=1e-5)


def test_sr_observe_needs_divisible_sides():
    with pytest.raises(LipError, match="divisible by 4"):
        SuperResolution(4)(torch.rand(1, 3, 37, 53), torch.Generator())


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
    aty = op.A_adjoint(y)
    assert aty.shape == x.shape and aty.dtype == torch.float64
    lhs, rhs = _dot(op.A(x), y), _dot(x, aty)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_sr_adjoint_identity_float32():
    op = SuperResolution(2)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 1, 20, 14, generator=gen), torch.rand(1, 1, 10, 7, generator=gen)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_inpaint_adjoint_identity_and_shapes(mask_channels):
    op = Inpaint.bernoulli((mask_channels, 9, 11), keep=0.5, seed=0)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 9, 11, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 3, 9, 11, generator=gen, dtype=torch.float64)
    ax = op.A(x)
    assert ax.shape == x.shape
    lhs, rhs = _dot(ax, y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    # The explicit adjoint agrees with the generic autograd one.
    assert torch.allclose(op.A_adjoint(y).double(), LinearPhysics.A_adjoint(op, y))
    assert op.output_size(9, 11) == (9, 11)


def test_identity_operator_adjoint():
    x = torch.randn(1, 3, 5, 7, dtype=torch.float64)
    assert torch.equal(Identity().A_adjoint(x), x)


def test_inpaint_masks_exactly():
    op = Inpaint.bernoulli((3, 40, 40), keep=0.3, seed=5)
    x = torch.rand(1, 3, 40, 40) + 0.1
    ax = op.A(x)
    keep = op.mask.bool().expand_as(x)
    assert torch.equal(ax[keep], x[keep]) and (ax[~keep] == 0).all()
    assert 0.2 < float(op.mask.mean()) < 0.4
    assert op.params()["observed"] == round(float(op.mask.mean()), 6)


def test_inpaint_bernoulli_is_seeded():
    a = Inpaint.bernoulli((1, 16, 16), 0.5, seed=1).mask
    assert torch.equal(a, Inpaint.bernoulli((1, 16, 16), 0.5, seed=1).mask)
    assert not torch.equal(a, Inpaint.bernoulli((1, 16, 16), 0.5, seed=2).mask)
    with pytest.raises(LipError, match="observes every value: nothing to inpaint"):  # as an all-white mask file
        Inpaint.bernoulli((1, 4, 4), 1.0, seed=0)


@pytest.mark.parametrize("keep", [0, -0.1, 1.5])
def test_inpaint_bad_keep_raises(keep):
    with pytest.raises(LipError, match="--keep"):
        Inpaint.bernoulli((1, 4, 4), keep, seed=0)


def test_denoise_observe_is_seeded_and_clipped():
    op = Denoise(25)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = op(x, torch.Generator().manual_seed(7))
    b = op(x, torch.Generator().manual_seed(7))
    c = op(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert (a == 0).any() and (a == 1).any()  # clipping actually happens at sigma 25
    # The noise level is sigma/255 (measured away from the clipped ends).
    mid = (x > 0.3) & (x < 0.7)
    assert abs(float((a - x)[mid].std()) - 25 / 255) < 0.01
    assert torch.equal(op.A(x), x)


def test_denoise_sigma_zero_is_identity_and_range_checked():
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(Denoise(0)(x, torch.Generator()), x)
    for bad in (-1, 256):
        with pytest.raises(LipError, match="--sigma"):
            Denoise(bad)


def test_sr_simulates_with_pillows_lanczos_resize_as_dip_not_with_its_own_operator():
    """DIP makes the low-resolution image with PIL's resize; fitting data the fit's own operator made (the inverse
    crime) flatters the scores. `operator` keeps that upper bound one flag away."""
    x = torch.rand(1, 3, 32, 48)
    y = SuperResolution(4)(x, torch.Generator())
    pil = np.stack([np.asarray(Image.fromarray(p).resize((12, 8), Image.Resampling.LANCZOS)) for p in x[0].numpy()])
    assert y.shape == (1, 3, 8, 12) and torch.allclose(y[0], torch.from_numpy(pil).clamp(0, 1))
    assert not torch.allclose(y, SuperResolution(4).A(x), atol=1e-3)
    assert torch.equal(SuperResolution(4, "operator")(x, torch.Generator()), SuperResolution(4).A(x))
    with pytest.raises(LipError, match="--downscale 'bicubic' is not one of pillow | operator"):
        SuperResolution(4, "bicubic")


def test_loss_is_mse_in_observation_space():
    op = SuperResolution(2)
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 8, 8)
    assert torch.allclose(op.loss(x, y), ((op.A(x) - y) ** 2).mean())


def test_params_are_json_friendly():
    for op in (Denoise(25), SuperResolution(4), Inpaint.bernoulli((1, 4, 4), 0.5, 0)):
        json.dumps(op.params())
    assert SuperResolution(8).params() == {"name": "sr", "scale": 8, "kernel": "lanczos2", "downscale": "pillow"}
    # the operator's own downscale is what every record before Pillow's was: left out, so that they still match
    assert SuperResolution(8, "operator").params() == {"name": "sr", "scale": 8, "kernel": "lanczos2"}
    assert Denoise(15).params() == {"name": "denoise", "sigma": 15}
