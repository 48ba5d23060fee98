"""The noise-level estimate (lipcli/noise_estimate.py) on synthetic Gaussian noise over bundled images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipcli.images import load_image
from lipcli.noise_estimate import estimate_sigma

# Stated tolerance, estimate / true sigma. 50: clipping at black and white hides some noise (low);
# 5: the picture's own grain adds to it (high).
TOLERANCE = {5: (1.0, 1.25), 15: (0.9, 1.1), 25: (0.9, 1.1), 50: (0.85, 1.05)}


def noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """As a saved noisy PNG: clipped to [0, 1], rounded to 8 bits."""
    gen = torch.Generator().manual_seed(seed)
    y = (clean + torch.randn(clean.shape, generator=gen, dtype=torch.float64) * sigma / 255).clamp(0, 1)
    return (y * 255).round() / 255


@pytest.mark.parametrize("image", ["sample:house", "tests/data/astronaut_64.png"])
@pytest.mark.parametrize("sigma", sorted(TOLERANCE))
def test_estimate_within_tolerance(image: str, sigma: int) -> None:
    clean = torch.from_numpy(load_image(image).pixels).double()
    low, high = TOLERANCE[sigma]
    for seed in range(3):
        assert low <= estimate_sigma(noisy(clean, sigma, seed)) / sigma <= high


def test_flat_image_and_shapes() -> None:
    flat = torch.full((1, 3, 40, 50), 0.5, dtype=torch.float64)
    y = noisy(flat, 20, 0)
    assert estimate_sigma(y) == pytest.approx(20, rel=0.05)
    assert estimate_sigma(y[0]) == estimate_sigma(y)  # (C,H,W) and (1,C,H,W) alike
    assert estimate_sigma(flat) == 0.0
    assert estimate_sigma(torch.zeros(1, 2, 2)) is None  # too small for the 3x3 residual


def test_smooth_content_is_not_noise() -> None:
    """A ramp plus a separable quadratic cancel in the residual: a clean smooth picture has sigma ~0."""
    yy, xx = torch.meshgrid(torch.linspace(0.1, 0.9, 48), torch.linspace(0.1, 0.9, 64), indexing="ij")
    smooth = (0.3 * xx + 0.2 * yy + 0.4 * (xx - 0.5) ** 2)[None]
    assert estimate_sigma(smooth) < 0.1


@pytest.mark.parametrize("task, floor", [("denoise", True), ("inpaint", False), ("sr", False)])
def test_fit_target_carries_the_noise_floor_of_noisy_tasks_only(task: str, floor: bool) -> None:
    """The early stop's noise gate reads the blind estimate of the observation's noise variance (never
    the simulated sigma or the clean image); tasks without a noise level have no floor."""
    from lipcli import config, nets
    from lipcli.problem import load_problem

    settings = {**config.resolve(task, "fast", "fast", {}), "sigma": 25.0}
    problem = load_problem("tests/data/astronaut_64.png", task, settings, simulate=True, seed=0)
    net = nets.build(nets.preset("dip-w16"))
    target = problem.target(net, torch.Generator().manual_seed(0), torch.device("cpu"))
    if floor:
        assert target.noise_floor == pytest.approx((problem.noise_sigma() / 255) ** 2)
        assert 0.8 <= target.noise_floor / (25 / 255) ** 2 <= 1.2
    else:
        assert target.noise_floor is None


def test_an_image_read_by_its_own_range_reports_the_noise_in_its_values() -> None:
    """A float 0..255 photo plus sigma 25 noise is read by its min..max, which the noise widens: the 0-255 scale
    estimate read ~20; the same estimate in the image's values is the noise that was added."""
    from lipcli import config, images
    from lipcli.problem import load_problem
    clean = load_image("sample:house").pixels.astype("float64") * 255
    noisy = clean + np.random.default_rng(0).normal(0, 25, clean.shape)
    settings = config.resolve("denoise", "fast", "fast", {})
    problem = load_problem(images.from_array(noisy.transpose(1, 2, 0).astype("float32")), "denoise", settings,
                           simulate=False, seed=0)
    assert not images.fixed_range(problem.stored) and problem.noise_sigma() < 0.9 * 25
    assert 0.9 <= problem.noise_sigma_in_values() / 25 <= 1.1
    on_scale = load_problem("sample:house", "denoise", settings, simulate=False, seed=0)
    assert on_scale.noise_sigma_in_values() is None  # 8-bit: the 0-255 scale is the image's own
