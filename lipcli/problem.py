"""A restoration problem: the observation of one image, its operator, and how to report results.

Shared by restore, prune and transfer, so every command degrades, scores and writes images the
same way. Gray images are replicated to three channels for the net and averaged back
(images.as_channels), so one mask serves gray and colour images alike; alpha is carried beside the
pixels and written back.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import images, nets, seeds
from .errors import LipError
from .fit import Target
from .metrics import SSIM_MIN_SIDE
from .noise_estimate import estimate_sigma
from .physics import TASKS, Physics, Task


@dataclass
class Problem:
    name: str
    y: torch.Tensor  # (1,3,h,w) observation, or (1, m) measurements (CS)
    task: Task
    op: Physics
    size: tuple[int, int]  # restored (H, W)
    gray: bool
    alpha: np.ndarray | None
    stored: images.Stored  # how the input held its samples: the output is written the same way
    sha256: str  # of the decoded input pixels
    clean: torch.Tensor | None = None  # (1,3,H,W), for reporting only
    simulated: bool = False  # lip degraded a clean input itself (--simulate)
    unit: float = 1.0  # an image input's value that a net output of 1 stands for (Physics.calibrate; MRI's scale)
    scored_as: tuple[float, float] = (1.0, 0.0)  # output * a + b: the output in `clean`'s units (reference_units)
    read_size: tuple[int, int] | None = None  # (H, W) of the input image as read (SR's is smaller); None: `size`

    def warning(self) -> str | None:
        """Why this fit will likely fail, to say before it: the operator's reason (physics.Physics.warning), or a float
        image whose values fill less than one 8-bit level of the [0, 1] floats are read in (a fit sees it as flat)."""
        found = self.op.warning(self.y)
        as_read = self.stored.dtype.startswith("float") and images.fixed_range(self.stored)  # floats inside [0, 1]
        if found or self.y.dim() != 4 or not as_read:
            return found
        lo, hi = float(self.y.min()), float(self.y.max())
        if hi - lo >= 1 / 255:
            return None
        return (f"{self.name}'s values span {lo:.3g} to {hi:.3g}, less than 1/255 of the [0, 1] that float images are "
                "read in: the fit sees an almost flat image; scale the values up (e.g. to 0..1) first")

    def operator_params(self) -> dict[str, Any]:
        """The operator as reports and artifacts record it. What only shapes a simulated degradation (a noise
        level, SR's downscale) is known only where lip made it (--simulate); a real observation's is null
        (`noise_sigma` estimates its noise level)."""
        params = self.op.params()
        unknown = {k: None for k in params if k in self.task.simulated | {"sigma"}}
        return params if self.simulated else {**params, **unknown}

    @property
    def metric_name(self) -> str:
        return self.task.metric_name(self.gray)

    @property
    def metric(self) -> Callable[[torch.Tensor, torch.Tensor], float]:
        return self._scored(self.task.metric(self.gray))

    def _scored(self, score: Callable[[torch.Tensor, torch.Tensor], float]
                ) -> Callable[[torch.Tensor, torch.Tensor], float]:
        """`score` of an output against the reference, in the reference's units."""
        a, b = self.scored_as
        return score if (a, b) == (1.0, 0.0) else lambda x, ref: score(x * a + b, ref)

    def target(self, net: torch.nn.Module, gen: torch.Generator, device: torch.device,
               z: torch.Tensor | None = None) -> Target:
        """The fitting-loop view: input code at the net's padded size, operator and observation."""
        if z is None:
            z = nets.make_input(net, *nets.padded_size(net, *self.size), gen)
        clean = None if self.clean is None else self.clean.to(device)
        sigma = self.noise_sigma()
        return Target(z=z.to(device), op=self.op.to(device), y=self.y.to(device), size=self.size,
                      clean=clean, metric=self.metric, noise_floor=None if sigma is None else (sigma / 255) ** 2)

    @property
    def ssim_note(self) -> str | None:
        """Why SSIM is not reported for this problem (an image smaller than its window), else None."""
        if self.clean is None or min(self.size) >= SSIM_MIN_SIDE:
            return None
        return (f"SSIM is not defined for an image of {self.size[1]}x{self.size[0]} pixels (its Gaussian window needs "
                f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels); reported as null")

    def noise_sigma(self) -> float | None:
        """The observation's Gaussian noise level, estimated (0-255 units), for tasks that have a noise
        level (`sigma` among their options); None for the others, whose observations are not noisy."""
        return self._estimated_sigma

    def noise_sigma_in_values(self) -> float | None:
        """`noise_sigma` in the input's own values, where lip read it by its own min..max (floats past [0, 1], signed
        or wide integers): there the 0-255 scale is of that range, which the noise itself widens; None elsewhere."""
        sigma = self.noise_sigma()
        if sigma is None or images.fixed_range(self.stored):
            return None
        return sigma / 255 * (self.stored.hi - self.stored.lo)

    @cached_property
    def _estimated_sigma(self) -> float | None:
        """Estimated once: the fit's jitter, its stop and the report all read it, and it takes ~2 s at 2048x2048."""
        return estimate_sigma(self.y) if self.task.noisy else None

    def scores(self, x: torch.Tensor) -> dict[str, float | None]:
        """PSNR (Y-channel for colour SR) and SSIM against the clean image, if one was given;
        SSIM is None where it is not defined (see ssim_note)."""
        if self.clean is None:
            return {"psnr": None, "ssim": None}
        clean = self.clean.to(x.device)
        similarity = self._scored(self.task.similarity(self.gray))
        return {"psnr": self.metric(x, clean), "ssim": None if self.ssim_note else similarity(x, clean)}

    def baseline(self) -> dict[str, Any] | None:
        """The operator's reconstruction without a prior (MRI: zero-filled), scored like lip's, or None."""
        found = self.op.baseline(self.y.to(next(iter(self.op.buffers()), self.y).device))
        if found is None:
            return None
        name, x = found
        return {"name": name, **self.scores(x)}

    def picture(self, x: torch.Tensor) -> images.Image:
        """A restored (1,3,H,W) tensor in the input's mode: gray stays gray, alpha and sample type are kept."""
        x = x.detach().float().cpu() * self.unit  # in the input image's units, where its scores were computed
        pixels = images.from_tensor(images.as_channels(x, 1) if self.gray else x)
        return images.Image(pixels, self._alpha_out(), self.stored, self.name)

    def _alpha_out(self) -> np.ndarray | None:
        if self.alpha is None or self.alpha.shape == self.size:
            return self.alpha
        a = torch.from_numpy(self.alpha)[None, None]
        return F.interpolate(a, size=self.size, mode="bilinear", align_corners=False)[0, 0].numpy()


def provenance(problems: list[Problem]) -> dict[str, Any]:
    """What a mask artifact records about the images it was searched on: the operator, and each
    image's name, pixel hash and size as read (an SR input's, not the restored one's)."""
    return {"operator": problems[0].operator_params(),
            "images": [{"name": p.name, "sha256": p.sha256, "height": (p.read_size or p.size)[0],
                        "width": (p.read_size or p.size)[1]} for p in problems]}


def _rgb(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(C,H,W) or (1,C,H,W) pixels as a (1,3,H,W) float tensor; gray is replicated."""
    t = torch.as_tensor(np.ascontiguousarray(pixels) if isinstance(pixels, np.ndarray) else pixels).float()
    return images.as_channels(t.reshape(1, -1, *t.shape[-2:]), 3)


def restore_bytes(spec: dict[str, Any], task: str, settings: dict[str, Any], simulate: bool, width: int,
                  height: int, precision: str, checkpoint: bool = False) -> int:
    """Peak memory of restoring a width x height input with this net: `nets.estimate_bytes` at the net's
    padded size of the restored image (larger than the input for a real super-resolution input)."""
    return nets.estimate_bytes(spec, *fitted_size(spec, task, settings, simulate, width, height), precision,
                               checkpoint)


def fitted_size(spec: dict[str, Any], task: str, settings: dict[str, Any], simulate: bool, width: int,
                height: int) -> tuple[int, int]:
    """(H, W) the net makes for a width x height input: the restored image's size (larger than the input for a real
    super-resolution input), padded to the net's multiple."""
    s = 1 if simulate else TASKS.get(task).upscale(settings)
    return nets.padded_size(nets.skeleton(spec), height * s, width * s)


def largest_need(paths: list[Path], task: str, settings: dict[str, Any], simulate: bool, spec: dict[str, Any],
                 precision: str) -> int | None:
    """The memory the largest of these inputs needs without checkpointing, read from their headers
    (None when none can be read: restoring them says why)."""
    sizes = [size for size in map(images.header_size, paths) if size is not None]
    if not sizes:
        return None
    width, height = max(sizes, key=lambda wh: wh[0] * wh[1])
    return restore_bytes(spec, task, settings, simulate, width, height, precision)


def _memory_cost(task: str, settings: dict[str, Any], simulate: bool) -> Callable[[int, int], str]:
    """For refusing an oversized image from its header: the memory restoring it would need."""
    def cost(width: int, height: int) -> str:
        try:
            need = restore_bytes(nets.resolve_spec(settings["net"]), task, settings, simulate, width, height,
                                 "bf16" if settings.get("precision") == "bf16" else "fp32", checkpoint=True)
        except Exception:  # only enriches a message: never fail on it
            return ""
        return f"restoring it would need about {need / 2**30:,.0f} GiB of memory"
    return cost


def load_problem(path: images.Source, task: str, settings: dict[str, Any], *, simulate: bool, seed: int,
                 inpaint_mask: Path | None = None, clean: images.Source | None = None,
                 max_pixels: int | None = None, clean_flag: str = "--clean",
                 cost: Callable[[int, int], str] | None = None) -> Problem:
    """Read an image (a file, an array or an Image: images.as_image) and build its problem.

    simulate=False: the image IS the degraded observation (the real use); `clean` is optional and
    only scores the result; a task whose observations are not images reads the source itself (MRI:
    k-space .npy). simulate=True: the image is clean; it is degraded here (seeded) and becomes the
    reference. The reference is kept in the units of the net's output (`Physics.calibrate`). `clean_flag`
    names the option that gave `clean` in messages (lip prune's --oracle-target is one too). `cost(width, height)`
    says the memory an image past `max_pixels` would need [the preset net's, checkpointed].
    """
    kind = TASKS.get(task)
    measured = None if simulate else kind.read_observation(path, settings)
    if measured is None:
        img = images.as_image(path, max_pixels=max_pixels, cost=cost or _memory_cost(task, settings, simulate))
        native = torch.from_numpy(np.ascontiguousarray(img.pixels)).float()[None]
        if kind.one_channel:
            native = images.as_channels(native, 1)
        gray, (h, w) = native.shape[1] == 1, native.shape[-2:]
        if simulate and clean is not None:
            raise LipError("--clean and --simulate exclude each other: with --simulate the input is the clean image")
        if not simulate:
            kind.check_real(inpaint_mask)
        op = kind.build(settings, h, w, gray, inpaint_mask, seed)
        if simulate:
            y, ref, size = op(native, seeds.generator(seed)), _rgb(native), (h, w)
        else:
            y, ref, size = kind.read_real(op, native), None, op.output_size(h, w)
        name, alpha, stored, sha256 = img.name, img.alpha, img.stored, images.pixel_hash(img)
    else:
        op, y, ref, size = measured.op, measured.y, None, measured.op.output_size(*measured.y.shape[-2:])
        name, alpha, sha256, gray = measured.name, None, measured.sha256, measured.gray
    scored_as, read_size = (1.0, 0.0), None if measured is not None else (int(h), int(w))
    if clean is not None:
        ref_img = images.as_image(clean, max_pixels=max_pixels)
        if (ref_img.height, ref_img.width) != size:
            raise LipError(f"{clean_flag} {ref_img.name} is {ref_img.width}x{ref_img.height} but the image "
                           f"restored from {name} is {size[1]}x{size[0]}")
        ref_pixels = ref_img.pixels
        if measured is None:  # compared with the input's output as the values both hold
            ref_pixels, *scored_as = images.reference_units(ref_img, stored)
        ref = _rgb(ref_pixels)
    unit = op.calibrate(y)  # from the observation alone; the reference is only rescaled to match
    if measured is not None:  # written back in the observation's units: float32, lip's 1 = `unit`
        stored = images.Stored("float32", 0.0, unit)
    y = _rgb(y) if y.dim() == 4 else y  # images are replicated; measurement vectors (CS, (1, m)) are not
    return Problem(name=name, y=y, task=kind, op=op, size=size, gray=gray, alpha=alpha,
                   stored=stored, sha256=sha256, clean=None if ref is None else ref / unit, simulated=simulate,
                   unit=1.0 if measured is not None else unit, scored_as=tuple(scored_as), read_size=read_size)
