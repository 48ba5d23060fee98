"""Single-coil Cartesian MRI: a sampling mask on the centred, orthonormal 2-D Fourier transform.

k = fftshift(fft2(ifftshift(x), norm="ortho")) and x = fftshift(ifft2(ifftshift(k), norm="ortho")), as
fastMRI defines them, so k-space saved by fastMRI-style code (DC at the centre) reads as it is.

What is fitted. The net fits a real, non-negative image (the mean of its output channels, as for every
gray image): k-space made from a magnitude image (`--simulate`, a PNG) is exactly that, and a real
image has half the unknowns of a complex one. A scanner's complex image is fitted by its real part
only; a two-channel (real, imaginary) output is not built.

Units. Measured k-space has arbitrary units (a scanner's are ~1e-4) and the net ends in a sigmoid, so
the operator carries `scale`, read from the observation alone: `headroom` (--headroom, 1) times the
zero-filled image's maximum. A(x) = scale * M F x and the loss is per sampled entry in units of scale^2.
Undersampling can leave the zero-filled peak below the true one (2-D masks at 8x put it at 0.71-0.95 of the
bundled scans' peaks), and the sigmoid's top then caps the brightest pixels there: after the fit `review`
says so when 1% or more of the image sits at that ceiling, and --headroom 1.5 gives them room (on those scans
+0.6 dB and more). It is not the default: where nothing was capped, 1.5 cost up to 1.6 dB (RESULTS-mri.md,
"Headroom").
A restored image is in units of scale: a PNG written from k-space has white = scale (the zero-filled image's
brightest pixel at 1 / headroom), and a .npy output is in the k-space's units. Scores are on magnitude with
the reference's maximum as data range (fastMRI); a reference (`--clean`) must be in the k-space's units, as
the image that `--simulate` made k-space from is.

Masks. Any 0/1 mask from a file, (H, W) or (W,) for columns; or with `--simulate` a seeded one of
mri_masks.MASK_TYPES: fastMRI's Cartesian column masks (random, equispaced), 2-D variable-density
points or radial spokes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import files, imageformats
from ..errors import LipError
from ..images import MAX_PIXELS, resolve
from ..metrics import psnr, ssim
from .base import LinearPhysics, array_hash
from .mri_masks import sampling_mask
from .task import SIMULATED, Flag, Measured, Metric, Task, register_task

HEADROOM = 1.0  # the default: 1.5 lost up to 1.6 dB where nothing was capped (RESULTS-mri.md, "Headroom")
SUGGESTED = 1.5  # > 1 / 0.71, the lowest zero-filled / true peak measured (module docstring), with a margin
CEILING, CAPPED = 0.97, 0.01  # an output at 97% of the net's top or more is at its ceiling; 1% so is a capped scan


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes (fastMRI's fft2c); real or complex in."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=dims), norm="ortho"), dim=dims)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Its inverse (and adjoint): the centred orthonormal 2-D inverse FFT."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=dims), norm="ortho"), dim=dims)


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, H, W): the image the channels stand for (the net's mean; a gray reference)."""
    return x.mean(dim=-3, keepdim=True)


def magnitude_psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR on magnitude, data range = the reference's maximum (fastMRI's evaluation)."""
    r = _magnitude(ref)
    return psnr(_magnitude(x), r, data_range=float(r.max()))


def magnitude_ssim(x: torch.Tensor, ref: torch.Tensor) -> float:
    r = _magnitude(ref)
    return ssim(_magnitude(x), r, data_range=float(r.max()))


class MRI(LinearPhysics):
    """A(x) = scale * M (F mean_c(x)), as (B, 2, H, W) real and imaginary parts; noise-free.

    F is fft2c, M the 0/1 sampling mask, mean_c the mean over the image's C channels.
    Adjoint: A^T(y) = scale / C * Re(F^H (M (y_re + i y_im))), the same on every channel.
    """

    name = "mri"
    CHANNELS = 3  # the nets' output channels; the adjoint returns images of this many

    def __init__(self, mask: torch.Tensor, source: str, sha256: str | None = None, headroom: float = HEADROOM
                 ) -> None:
        super().__init__()
        if not bool(mask.any()):
            raise LipError(f"the sampling mask {source} samples nothing (it has no 1)")
        self.register_buffer("mask", mask.float())  # (H, W), 1 = sampled
        self.source = source
        self.sha256 = sha256  # a mask file's (array_hash): its name says nothing of what it held
        if not 1 <= headroom <= 100:
            raise LipError(f"--headroom {headroom:g} must be from 1 to 100 (a net output of 1 = that many zero-filled "
                           "image peaks)")
        self.headroom = headroom  # a net output of 1 = this many zero-filled peaks (calibrate)
        self.scale = 1.0  # observation units of a net output of 1 (calibrate)

    def _sampled(self, x: torch.Tensor) -> torch.Tensor:
        """M F mean_c(x) as (B, 2, H, W) real, in image units."""
        k = fft2c(x.mean(dim=1)) * self.mask
        return torch.view_as_real(k).movedim(-1, 1)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self._sampled(x) * self.scale

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        x = ifft2c(torch.complex(y[:, 0], y[:, 1]) * self.mask).real * (self.scale / self.CHANNELS)
        return x[:, None].expand(-1, self.CHANNELS, -1, -1).clone()

    def input_shape(self, y_shape: torch.Size) -> tuple[int, ...]:
        return (y_shape[0], self.CHANNELS, *y_shape[-2:])

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error per sampled k-space entry (|.|^2 of a complex entry), in units of scale:
        with every entry sampled it equals the image-space MSE (F is orthonormal)."""
        err = (self._sampled(x) - y / self.scale).pow(2).sum()
        return err / (x.shape[0] * self.mask.sum())

    def loss_settings(self) -> dict[str, Any]:
        """The headroom sets the loss's units (y / scale): a fit saved under another one is another fit. Left out
        at 1, as fits saved before the headroom were made, so those still resume with --headroom 1."""
        return _headroom(self.headroom)

    def review(self, x: torch.Tensor) -> tuple[dict[str, Any], str | None]:
        """The share of the image at the net's ceiling (`at_ceiling`): pixels brighter than `scale` cannot be drawn,
        so a scan whose true peak lies above it piles up there. On the bundled scans about 2-3% sat there where the
        headroom was short (2-D masks at 8x) and under 1% where it was not (RESULTS-mri.md, "Headroom")."""
        share = float((x.mean(dim=1) >= CEILING).float().mean())
        if share < CAPPED:
            return {"at_ceiling": share}, None
        more = SUGGESTED if self.headroom < SUGGESTED else SUGGESTED * self.headroom
        return {"at_ceiling": share}, (f"{share:.1%} of the image sits at the brightest value the fit can draw ("
                                      f"{self.headroom:g} x the zero-filled image's peak): the scan is likely "
                                      f"brighter there; rerun with --headroom {more:g} to give it room")

    def consistent(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The net's k-space with every sampled entry replaced by the measured one (the data-consistency step
        of untrained-net MRI, Darestani & Heckel 2021), back to a real non-negative image in units of scale.
        The real part, not the magnitude: lip fits a real image, and the magnitude rectifies the background's
        error (brain 4x: SSIM 0.72 against 0.86; experiments/RESULTS-data-consistency.md)."""
        k = torch.where(self.mask.bool(), self._complex(y) / self.scale, fft2c(x.mean(dim=1)))
        return ifft2c(k).real.clamp(min=0)[:, None].expand(-1, x.shape[1], -1, -1).clone()

    def calibrate(self, y: torch.Tensor) -> float:
        """Set `scale`, the net's output of 1 (the sigmoid's top), to `headroom` times the zero-filled image's
        maximum: undersampling can leave that below the true peak (module docstring)."""
        peak = float(ifft2c(self._complex(y)).abs().max())
        if not peak > 0:
            raise LipError("the k-space is zero at every sampled entry: there is nothing to reconstruct")
        self.scale = peak * self.headroom
        return self.scale

    def baseline(self, y: torch.Tensor) -> tuple[str, torch.Tensor]:
        """The zero-filled reconstruction |F^H M y|, in units of scale."""
        return "zero-filled", ifft2c(self._complex(y)).abs()[:, None] / self.scale

    def _complex(self, y: torch.Tensor) -> torch.Tensor:
        return torch.complex(y[:, 0], y[:, 1]) * self.mask

    def kspace(self, y: torch.Tensor) -> np.ndarray:
        """One observation as the complex64 (H, W) k-space file that reads back as the same observation."""
        return self._complex(y)[0].to(torch.complex64).cpu().numpy()

    def mask_array(self) -> np.ndarray:
        """The mask as a 0/1 uint8 file: (W,) when every row is the same (a column mask), else (H, W)."""
        m = self.mask.cpu().to(torch.uint8)
        return (m[0] if bool((m == m[:1]).all()) else m).numpy()

    def save_scan(self, y: torch.Tensor, folder: Path) -> tuple[Path, Path]:
        """Write `y` as folder/kspace.npy and the mask as folder/mask.npy (the folder made): a simulated scan
        as the files `--task mri KSPACE --sampling-mask MASK` reads back."""
        paths = check_scan_paths(folder)
        files.make_folder(folder, "k-space folder")
        for path, array in zip(paths, (self.kspace(y), self.mask_array())):
            imageformats.save_npy(path, array)
        return paths

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "mask": self.source, "sampled": round(float(self.mask.mean()), 6),
                "scale": self.scale, **_headroom(self.headroom),
                **({"mask_sha256": self.sha256} if self.sha256 else {})}


def _headroom(headroom: float) -> dict[str, float]:
    """How records name the headroom: what every MRI record before it was (`MRITask.absent`) by leaving it out
    (so that those searches resume and those rows are reused with --headroom 1)."""
    return {} if headroom == MRITask.absent["headroom"] else {"headroom": float(headroom)}


def check_scan_paths(folder: Path) -> tuple[Path, Path]:
    """The k-space and mask files `save_scan` writes into `folder`, refused now (before a fit, and before
    either is written) if one of them cannot be written, e.g. because it is one of the run's inputs."""
    paths = folder / "kspace.npy", folder / "mask.npy"
    if folder.is_dir():
        for path in paths:
            files.check_writable(path)
    return paths


def read_array(path: Path, what: str) -> np.ndarray:
    """A finite numeric array from a .npy file (imageformats.read_npy: never unpickled; sized from the header)."""
    def check(width: int, height: int) -> None:
        if width * height > MAX_PIXELS:
            raise LipError(f"cannot read {what} {path.name}: it is {height}x{width}, more than {MAX_PIXELS:,} values")

    a = imageformats.read_npy(path, check)
    return checked(a, f"{what} {path.name}")


def checked(a: np.ndarray, what: str) -> np.ndarray:
    """`a` itself, refused in one line when it is empty, not numeric, or holds NaN or infinity."""
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise LipError(f"{what} holds {a.dtype} values, not numbers")
    if a.size == 0:
        raise LipError(f"{what} is empty (shape {a.shape})")
    if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        raise LipError(f"{what} holds {int(a.size - np.isfinite(a).sum()):,} NaN or infinite values")
    return a


def read_sampling_mask(path: Path, height: int, width: int) -> torch.Tensor:
    """A 0/1 mask file (1 = sampled) of shape (H, W), or (W,) for the same columns on every row."""
    m = read_array(path, "sampling mask")
    if m.shape not in ((height, width), (width,)):
        raise LipError(f"sampling mask {path.name} has shape {m.shape} but the k-space is {height}x{width} "
                       f"(rows x columns): give shape ({height}, {width}), or ({width},) for a column mask")
    if not np.isin(m, (0, 1)).all():
        raise LipError(f"sampling mask {path.name} holds values other than 0 and 1 (1 = sampled)")
    return torch.from_numpy(m.astype(bool)).expand(height, width)


class MRITask(Task):
    name = "mri"
    options = {"acceleration": 4, "center_fraction": 0.08, "mask_type": "random", "sampling_mask": None,
               "headroom": HEADROOM}
    simulated = frozenset({"acceleration", "center_fraction", "mask_type"})
    absent = {"headroom": 1.0}
    flags = {
        "sampling_mask": Flag("MRI: k-space sampling mask .npy, 0/1 (1 = sampled) of shape (H, W), or (W,) for "
                              "columns; with --simulate it replaces the drawn mask", Path, grid=False),
        "acceleration": Flag(f"MRI, simulated ({SIMULATED}): undersampling factor, e.g. 4 or 8 [4]"),
        "center_fraction": Flag(f"MRI, simulated ({SIMULATED}): fraction of the central k-space columns (and rows, "
                                "for 2-D masks) always sampled [0.08]"),
        "mask_type": Flag(f"MRI, simulated ({SIMULATED}; seeded): random | equispaced columns, variable-density "
                          "points | radial spokes [random]", str),
        "headroom": Flag("MRI: a net output of 1 (its sigmoid's top) stands for this many zero-filled image peaks: "
                         "room for pixels brighter than that peak, which 2-D masks at high acceleration leave (lip "
                         "says so after a fit that hit the ceiling; 1.5 there) [1]", min=1),
    }
    real_hint = " (--sampling-mask says which k-space samples were measured)"
    # k-space inpainting: inpainting's settings. Noise-free k-space kept improving to 1000 iterations
    # (64x64 brain, 4x: 24.1 dB with reg-noise 0.03, 22.9 dB without; experiments/RESULTS-mri.md).
    fitting = {"iters": 3000, "reg_noise": 0.03, "ema": 0.0}
    fast_iters = 1500
    # The measured k-space can be put back (--data-consistency), but not by default: on the bundled brain and
    # phantom it gained PSNR and lost SSIM (experiments/RESULTS-data-consistency.md).
    data_consistency = True
    fast_data_consistency = False
    one_channel = True
    variant_hint = "give the acceleration: mri4 or mri8"

    def check_flags(self, given: dict[str, Any], simulate: bool, inpaint_mask: Path | None) -> None:
        """Also refuse the flags that draw a mask beside the mask given (--sampling-mask replaces the drawn one)."""
        super().check_flags(given, simulate, inpaint_mask)
        drawn = self._drawn(given)
        if given.get("sampling_mask") is not None and drawn:
            raise LipError(f"{', '.join(drawn)}: --sampling-mask gives the sampled k-space points, so no mask is "
                           f"drawn: drop {'it' if len(drawn) == 1 else 'them'}")

    def _drawn(self, given: dict[str, Any]) -> list[str]:
        """The flags among `given` that shape a drawn mask (acceleration, center fraction, mask type)."""
        return ["--" + k.replace("_", "-") for k in sorted(self.simulated) if given.get(k) is not None]

    def check_settings(self, settings: dict[str, Any], fixed: dict[str, Any]) -> None:
        """A config file's sampling mask beside a flag (or a grid task, mri4) that shapes the drawn mask: the file
        would replace it in silence (a grid's mri4 and mri8 rows came out the same)."""
        drawn = self._drawn(fixed)
        if settings.get("sampling_mask") and fixed.get("sampling_mask") is None and drawn:
            raise LipError(f"{', '.join(drawn)}: the config's sampling_mask {Path(settings['sampling_mask']).name} "
                           "gives the sampled k-space points, so no mask is drawn: drop one of them")

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> MRI:
        headroom = float(settings.get("headroom", HEADROOM))
        if settings.get("sampling_mask"):
            path = Path(settings["sampling_mask"])
            mask = read_sampling_mask(path, height, width).float()
            return MRI(mask, path.name, array_hash(mask.numpy()), headroom)
        acc, cf, kind = float(settings["acceleration"]), float(settings["center_fraction"]), settings["mask_type"]
        mask = sampling_mask(kind, height, width, acc, cf, seed)
        return MRI(mask, f"{kind}(acceleration={acc:g}, center_fraction={cf:g}, seed={seed})", headroom=headroom)

    def read_observation(self, source: Any, settings: dict[str, Any]) -> Measured:
        """k-space: a complex (H, W) array, or a .npy file holding one."""
        if isinstance(source, np.ndarray):
            k, name = checked(source, "the k-space array"), "k-space"
        elif isinstance(source, (str, Path)):
            path = resolve(source)
            if path.suffix.lower() != ".npy":
                raise LipError(f"--task mri reads k-space from a .npy file (complex, H x W); to make k-space from "
                               f"the image {path.name}, add --simulate")
            k, name = read_array(path, "k-space"), path.name
        else:
            raise LipError("--task mri reads complex k-space: a .npy file or a numpy array (add --simulate to "
                           "make k-space from an image)")
        if not settings.get("sampling_mask"):
            raise LipError("reconstructing k-space needs --sampling-mask MASK.npy (1 = sampled), or use "
                           "--simulate to make k-space from an image")
        if not np.iscomplexobj(k):
            raise LipError(f"k-space {name} holds real {k.dtype} values: give complex k-space "
                           "(complex64, the centred 2-D FFT of the image, DC in the middle)")
        if k.ndim != 2:
            raise LipError(f"k-space {name} has shape {k.shape}: single-coil k-space is one (H, W) slice "
                           "(for a volume, save one slice, e.g. k[i])")
        op = self.build(settings, *k.shape, gray=True, inpaint_mask=None, seed=0)
        y = torch.view_as_real(torch.from_numpy(k.astype(np.complex64))).movedim(-1, 0)[None] * op.mask
        return Measured(op=op, y=y.contiguous(), name=name, sha256=array_hash(k, op.mask_array()))

    def metric(self, gray: bool) -> Metric:
        return magnitude_psnr

    def similarity(self, gray: bool) -> Metric:
        return magnitude_ssim

    def variants(self) -> dict[str, dict[str, Any]]:
        return {f"mri{a}": {"acceleration": a} for a in (4, 8)}

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        mask = settings.get("sampling_mask")
        headroom = _headroom(float(settings.get("headroom", HEADROOM)))  # the fit's units
        if mask:  # shards' paths differ
            return {"sampling_mask": Path(mask).name, "mask_file_sha256": files.sha256_of(mask), **headroom}
        return {"acceleration": float(settings["acceleration"]), "center_fraction": float(settings["center_fraction"]),
                "mask_type": settings["mask_type"], "sampling_mask": None, **headroom}


register_task(MRITask())
