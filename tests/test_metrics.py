"""Metrics must reproduce the reference numbers (scikit-image) that published tables use."""
import math

import numpy as np
import pytest
import torch

from lipcli.metrics import Scores, psnr, psnr_y, rgb_to_y, score, ssim

skm = pytest.importorskip("skimage.metrics")


def smooth_noisy(c: int, h: int, w: int, seed: int, noise: float = 0.05) -> torch.Tensor:
    """A smooth random image plus noise, in [0, 1], shaped (C, H, W)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, c, max(h // 8, 2), max(w // 8, 2), generator=g, dtype=torch.float64)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0]
    return (img + noise * torch.randn(c, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)


def procedural(h: int, w: int) -> torch.Tensor:
    """A 'real-looking' RGB scene: gradients, a hard-edged disc, stripes and texture."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64),
                            torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    disc = (((xx - 0.6) ** 2 + (yy - 0.4) ** 2) < 0.08).double()
    stripes = 0.5 + 0.5 * torch.sin(40 * xx + 10 * yy)
    r = 0.6 * xx + 0.4 * disc
    g = 0.3 + 0.5 * yy * stripes
    b = 0.5 + 0.3 * torch.cos(25 * xx * yy) - 0.3 * disc
    return torch.stack([r, g, b]).clamp(0, 1)


def sk_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    a, b = x.numpy(), y.numpy()
    return skm.structural_similarity(a, b, data_range=1, channel_axis=0, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)


def degrade(x: torch.Tensor, seed: int, noise: float = 0.08) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + noise * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


def test_psnr_matches_skimage():
    x = smooth_noisy(3, 64, 64, seed=0)
    y = degrade(x, seed=1)
    ref = skm.peak_signal_noise_ratio(x.numpy(), y.numpy(), data_range=1)
    assert psnr(x, y) == pytest.approx(ref, abs=1e-9)
    assert psnr(x.float(), y.float()) == pytest.approx(ref, abs=1e-4)
    assert psnr(x[None], y[None]) == pytest.approx(ref, abs=1e-9)  # batched input


def test_psnr_clamps_to_unit_range():
    x = smooth_noisy(3, 16, 16, seed=2)
    assert psnr(x + 5.0, torch.ones_like(x)) == math.inf


def test_psnr_identical_is_inf():
    x = smooth_noisy(3, 16, 16, seed=3)
    assert psnr(x, x.clone()) == math.inf


@pytest.mark.parametrize("c,h,w", [(3, 64, 64), (1, 64, 64), (3, 37, 53), (1, 53, 37), (3, 11, 11)])
def test_ssim_matches_skimage_smooth_noise(c, h, w):
    x = smooth_noisy(c, h, w, seed=h * w + c)
    y = degrade(x, seed=7)
    assert ssim(x, y) == pytest.approx(sk_ssim(x, y), abs=1e-4)


def test_ssim_matches_skimage_procedural_crop():
    x = procedural(128, 128)[:, 20:84, 30:94]  # a crop, like scoring a patch
    y = degrade(x, seed=11, noise=0.03)
    assert ssim(x, y) == pytest.approx(sk_ssim(x, y), abs=1e-4)
    assert ssim(x.float(), y.float()) == pytest.approx(sk_ssim(x, y), abs=1e-4)


def test_ssim_matches_skimage_real_image():
    from skimage import data

    x = torch.from_numpy(data.astronaut()[100:164, 180:244].astype(np.float64) / 255).permute(2, 0, 1)
    y = degrade(x, seed=5)
    assert ssim(x, y) == pytest.approx(sk_ssim(x, y), abs=1e-4)


def test_ssim_identical_is_one_and_batch_averages():
    x = smooth_noisy(3, 32, 32, seed=4)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    y1, y2 = degrade(x, seed=1), degrade(x, seed=2, noise=0.2)
    both = ssim(torch.stack([x, x]), torch.stack([y1, y2]))
    assert both == pytest.approx((ssim(x, y1) + ssim(x, y2)) / 2, abs=1e-12)


def test_ssim_too_small_raises_like_skimage():
    x = smooth_noisy(3, 10, 40, seed=0)
    with pytest.raises(ValueError):
        sk_ssim(x, x)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))


def test_rgb_to_y_white_black_gray():
    white, black = torch.ones(3, 4, 4), torch.zeros(3, 4, 4)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 4, 4), 235 / 255), atol=1e-6)
    assert torch.allclose(rgb_to_y(black), torch.full((1, 4, 4), 16 / 255), atol=1e-6)
    assert rgb_to_y(white[None]).shape == (1, 1, 4, 4)
    gray = torch.rand(1, 5, 5)
    assert rgb_to_y(gray) is gray


def test_psnr_y_ignores_border():
    x = smooth_noisy(3, 32, 32, seed=8)
    y = degrade(x, seed=9)
    base = psnr_y(x, y, border=4)
    y_border = y.clone()
    y_border[:, :4, :] = 1 - y_border[:, :4, :]
    y_border[:, :, -4:] = 0
    assert psnr_y(x, y_border, border=4) == pytest.approx(base, abs=1e-12)
    assert psnr_y(x, y_border, border=0) < base  # without cropping the change is seen
    ref = skm.peak_signal_noise_ratio(rgb_to_y(x)[:, 4:-4, 4:-4].numpy(),
                                      rgb_to_y(y)[:, 4:-4, 4:-4].numpy(), data_range=1)
    assert base == pytest.approx(ref, abs=1e-9)


def test_score():
    x = smooth_noisy(3, 24, 24, seed=10)
    y = degrade(x, seed=12)
    s = score(x, y)
    assert s == Scores(psnr=psnr(x, y), ssim=ssim(x, y))
    with pytest.raises(AttributeError):
        s.psnr = 0.0  # frozen
