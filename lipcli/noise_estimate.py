"""The noise level of an observation when nobody knows it: a robust estimate from fine-scale residuals.

A user's noisy photo comes without its sigma. We filter every channel with Immerkaer's mask

    M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]    (the difference of two Laplacians)

which cancels constants, ramps and the separable quadratics of smooth image content, and turns white
Gaussian noise of std sigma into values of std 6 sigma (||M||_2 = 6). Edges and texture give a few large
responses; the median absolute response ignores them (Donoho's MAD: sigma = median|r| / 0.6745 for
Gaussian r), where Immerkaer's mean |r| would not. Pixels at 0 or 1 were clipped and carry less noise,
so responses touching one are left out while enough others remain.

Accuracy on 44 photographs of ../shared/data (centred 128x128 crops, 8-bit clipped noise;
experiments/RESULTS-noise-estimate.md): median estimate/true 1.04 / 1.00 / 0.91 at sigma 15 / 25 / 50, 93% /
100% / 98% of crops within 15%. At 50, clipping near black and white removes noise the estimate cannot see
(a few percent low); at 5, the picture's own grain and texture add to the noise (median 1.19).

Where lip uses it: reported by `lip restore` for denoising (human line and `sigma_estimated` in --json)
and given to BM3D in benchmarks/bench_bm3d.py. Nothing in the DIP fit needs sigma: the loss is the
plain MSE to the observation and the early stop watches the outputs' variance, so neither reads it.
The obvious use, stopping when the loss falls to sigma^2 (the discrepancy principle), fired far too early
on the early-stopping study's runs: 1.9 dB below the oracle against 0.17 dB for lip's rule
(experiments/RESULTS-ensemble.md, experiments/trajectory_average.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MAD_TO_STD = 0.6745  # median |N(0, 1)|
_MASK = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_MASK_NORM = 6.0  # sqrt of the sum of squared mask entries
_MIN_UNCLIPPED = 64  # fewer responses clear of clipped pixels than this: use them all


def estimate_sigma(y: torch.Tensor) -> float | None:
    """Gaussian noise std of an image in [0, 1], shaped (C,H,W) or (1,C,H,W), in 0-255 units.

    None when the image is smaller than 3x3 (no residual to measure).
    """
    x = y.detach().float().cpu().reshape(-1, 1, *y.shape[-2:])  # (C,1,H,W): channels filtered alike
    if min(x.shape[-2:]) < 3:
        return None
    r = F.conv2d(x, _MASK[None, None]) / _MASK_NORM  # (C,1,H-2,W-2), std sigma on smooth content
    clipped = F.max_pool2d(((x <= 0) | (x >= 1)).float(), 3, stride=1) > 0  # a response touches one
    if int((~clipped).sum()) >= _MIN_UNCLIPPED:
        r = r[~clipped]
    return float(r.abs().median()) / MAD_TO_STD * 255
