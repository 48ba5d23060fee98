"""Image quality metrics (PSNR, SSIM, Y-channel PSNR) on torch tensors.

Numbers must be comparable with published Deep Image Prior / LIP tables, so each metric
follows one fixed reference convention (documented per function) rather than a new variant.
Images are float tensors shaped (C, H, W) or (N, C, H, W) with values in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# SSIM "paper setting" (Wang et al. 2004), as skimage with gaussian_weights=True, sigma=1.5.
_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)  # 5: skimage's truncate=3.5 -> an 11-tap window
_WIN = 2 * _RADIUS + 1
SSIM_MIN_SIDE = _WIN  # smaller images have no SSIM (see ssim); reports give None and say why
_K1, _K2 = 0.01, 0.03


def _as_nchw(x: torch.Tensor, y: torch.Tensor, clamp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes, add a batch axis if missing, clamp to [0, 1] (unless told not to) and move to float64."""
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() not in (3, 4):
        raise ValueError(f"expected (C,H,W) or (N,C,H,W) images, got shape {tuple(x.shape)}")
    if x.dim() == 3:
        x, y = x[None], y[None]
    x, y = x.detach().double(), y.detach().to(x.device, torch.float64)  # a reference may wait on the CPU
    # Outputs of a network can overshoot [0, 1]; scoring them as saved images means clamping.
    return (x.clamp(0, 1), y.clamp(0, 1)) if clamp else (x, y)


def _psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> float:
    mse = torch.mean((x - y) ** 2).item()
    return float("inf") if mse == 0 else 20.0 * math.log10(data_range) - 10.0 * math.log10(mse)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float | None = None) -> float:
    """PSNR in dB with data range 1, over all pixels; identical images give inf.

    `data_range`: values are scored unclamped against this range instead (fastMRI's convention for
    magnitude images, whose units are arbitrary: the reference's maximum).
    """
    if data_range is None:
        return _psnr(*_as_nchw(x, y))
    return _psnr(*_as_nchw(x, y, clamp=False), data_range)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D Gaussian taps, normalised to sum 1 (as scipy.ndimage.gaussian_filter builds them)."""
    t = torch.arange(-_RADIUS, _RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (t / _SIGMA) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float | None = None) -> float:
    """Mean SSIM, Wang et al. 2004 paper setting, averaged over channels (and batch).

    Matches skimage.metrics.structural_similarity(data_range=1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False): skimage filters with reflect padding and then
    crops a 5-px border, which leaves exactly the 'valid' (unpadded) 11x11 filtering used here.
    Like skimage, images smaller than 11 px on a side raise ValueError (no smaller fallback
    window, since that would silently change the metric). Inputs are clamped to [0, 1]; with
    `data_range` they are not, and the constants use that range (skimage's data_range; fastMRI passes
    the reference's maximum).
    """
    x, y = _as_nchw(x, y, clamp=data_range is None)
    n, c, h, w = x.shape
    if h < _WIN or w < _WIN:
        raise ValueError(f"SSIM needs images at least {_WIN}x{_WIN} pixels (its Gaussian window), got {h}x{w}")
    g = _gaussian_window(x.dtype, x.device)
    gh = g.view(1, 1, _WIN, 1).expand(c, 1, _WIN, 1)
    gw = g.view(1, 1, 1, _WIN).expand(c, 1, 1, _WIN)

    def blur(z: torch.Tensor) -> torch.Tensor:  # separable, per channel, no padding
        return F.conv2d(F.conv2d(z, gh, groups=c), gw, groups=c)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx  # population (biased) variances and covariance
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    peak = 1.0 if data_range is None else data_range
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2  # (K * data_range)^2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean().item()


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 limited-range luma in [16/255, 235/255], as used by standard SR evaluation code.

    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 1]; works on (C,H,W)
    or (N,C,H,W) and keeps the channel axis (size 1). Gray input (C=1) is returned unchanged.
    """
    ch = x.shape[-3]
    if ch == 1:
        return x
    if ch != 3:
        raise ValueError(f"rgb_to_y needs 1 or 3 channels, got {ch}")
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr_y(x: torch.Tensor, y: torch.Tensor, border: int) -> float:
    """Super-resolution PSNR: on the Y channel, ignoring `border` pixels on every side.

    Borders are dropped because upsamplers cannot reconstruct them well; DIP/LIP use border=4.
    """
    x, y = _as_nchw(x, y)  # clamp RGB first, as when the result is saved as an image
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves no pixels in a {h}x{w} image")
    x, y = rgb_to_y(x), rgb_to_y(y)
    if border:
        x = x[..., border:-border, border:-border]
        y = y[..., border:-border, border:-border]
    return _psnr(x, y)


@dataclass(frozen=True)
class Scores:
    """PSNR (dB) and SSIM of one result against its ground truth."""

    psnr: float
    ssim: float


def score(x: torch.Tensor, y: torch.Tensor) -> Scores:
    """Both standard metrics at once, for reports and benchmark tables."""
    return Scores(psnr=psnr(x, y), ssim=ssim(x, y))
