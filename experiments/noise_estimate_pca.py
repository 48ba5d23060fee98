"""Would a texture-robust noise estimate help the stop's gate? (issue 17, twelfth session)

lipcli/noise_estimate.py's MAD of fine-scale residuals reads texture as noise at low sigma (comic, man:
1.15x at sigma 15), which opens the early-stop gate early. This compares it with a patch-PCA estimate
(Chen, Zhu & Heng, ICCV 2015: the noise variance is the mean of the patch covariance's smallest eigenvalues,
the longest tail whose mean is also its median), on the crops and noise of experiments/noise_estimate_eval.py.
The bound on what any estimator could buy the stop is the replay with the true sigma
(`experiments/stop_gate.py --sigma true`, RESULTS-stop-gate.md).

    PYTHONPATH=$PWD python experiments/noise_estimate_pca.py
"""
from __future__ import annotations

import numpy as np
import torch

from lipcli.images import load_image
from lipcli.noise_estimate import estimate_sigma
from noise_estimate_eval import DATA, SIGMAS, centre_crop, noisy_8bit


def pca_sigma(x: np.ndarray, d: int = 7) -> float:
    """Noise std (0-255) of a (C,H,W) image in [0, 1] from the eigenvalues of its d x d x C patches."""
    c = x.shape[0]
    patches = np.lib.stride_tricks.sliding_window_view(x, (c, d, d))[0].reshape(-1, c * d * d)
    patches = patches - patches.mean(0)
    lam = np.linalg.eigvalsh(patches.T @ patches / len(patches))[::-1]  # descending
    for i in range(len(lam)):
        tail = lam[i:]
        tau = tail.mean()
        if (tail > tau).sum() == (tail < tau).sum():
            return float(np.sqrt(max(tau, 0.0))) * 255
    return float(np.sqrt(max(lam[-1], 0.0))) * 255


def main() -> None:
    rng = np.random.default_rng(0)
    ratios: dict[str, dict[int, list[float]]] = {k: {s: [] for s in SIGMAS} for k in ("MAD (shipped)", "patch PCA")}
    per_image = []
    for path in sorted(DATA.glob("*.png")):
        clean = centre_crop(load_image(path).pixels.astype(np.float64), 128)
        row = [path.stem]
        for s in SIGMAS:
            y = noisy_8bit(clean, s, rng)
            mad, pca = estimate_sigma(torch.from_numpy(y)), pca_sigma(y)
            ratios["MAD (shipped)"][s].append(mad / s)
            ratios["patch PCA"][s].append(pca / s)
            row.append(f"{mad:.1f} / {pca:.1f}")
        per_image.append(row)
    print("| estimator | sigma | median ratio | min | max | within 10% |\n|---|---|---|---|---|---|")
    for name, by_sigma in ratios.items():
        for s, v in by_sigma.items():
            a = np.array(v)
            print(f"| {name} | {s} | {np.median(a):.2f} | {a.min():.2f} | {a.max():.2f} | {np.mean(abs(a - 1) <= 0.1):.0%} |")
    print("\nPer image (MAD / PCA):\n\n| image | " + " | ".join(f"sigma {s}" for s in SIGMAS) + " |")
    print("|---|" + "---|" * len(SIGMAS))
    for row in per_image:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
