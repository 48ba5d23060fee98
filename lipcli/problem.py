"""A restoration problem: the observation of one image, its operator, and how to report results.

Shared by restore, prune and transfer, so every command degrades, scores and writes images the
same way. Gray images are replicated to three channels for the net and averaged back, so one mask
serves gray and colour images alike; alpha is carried beside the pixels and written back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import images, nets
from .errors import LipError
from .fit import Target
from .metrics import SSIM_MIN_SIDE, ssim
from .noise_estimate import estimate_sigma
from .physics import TASKS, Physics, Task


@dataclass
class Problem:
    name: str
    y: torch.Tensor  # (1,3,h,w) observation
    task: Task
    op: Physics
    size: tuple[int, int]  # restored (H, W)
    gray: bool
    alpha: np.ndarray | None
    stored: images.Stored  # how the input held its samples: the output is written the same way
    sha256: str  # of the decoded input pixels
    clean: torch.Tensor | None = None  # (1,3,H,W), for reporting only

    @property
    def metric_name(self) -> str:
        return self.task.metric_name(self.gray)

    @property
    def metric(self) -> Callable[[torch.Tensor, torch.Tensor], float]:
        return self.task.metric(self.gray)

    def target(self, net: torch.nn.Module, gen: torch.Generator, device: torch.device,
               z: torch.Tensor | None = None) -> Target:
        """The fitting-loop view: input code at the net's padded size, operator and observation."""
        if z is None:
            z = nets.make_input(net, *nets.padded_size(net, *self.size), gen)
        clean = None if self.clean is None else self.clean.to(device)
        return Target(z=z.to(device), op=self.op.to(device), y=self.y.to(device), size=self.size,
                      clean=clean, metric=self.metric)

    @property
    def ssim_note(self) -> str | None:
        """Why SSIM is not reported for this problem (an image smaller than its window), else None."""
        if self.clean is None or min(self.size) >= SSIM_MIN_SIDE:
            return None
        return (f"SSIM is not defined for a {self.size[1]}x{self.size[0]} image (its Gaussian window needs "
                f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels); reported as null")

    def noise_sigma(self) -> float | None:
        """The observation's Gaussian noise level, estimated (0-255 units), for tasks that have a noise
        level (`sigma` among their options); None for the others, whose observations are not noisy."""
        return estimate_sigma(self.y) if "sigma" in self.task.options else None

    def scores(self, x: torch.Tensor) -> dict[str, float | None]:
        """PSNR (Y-channel for colour SR) and SSIM against the clean image, if one was given;
        SSIM is None where it is not defined (see ssim_note)."""
        if self.clean is None:
            return {"psnr": None, "ssim": None}
        clean = self.clean.to(x.device)
        return {"psnr": self.metric(x, clean), "ssim": None if self.ssim_note else ssim(x, clean)}

    def picture(self, x: torch.Tensor) -> images.Image:
        """A restored (1,3,H,W) tensor in the input's mode: gray stays gray, alpha and sample type are kept."""
        pixels = images.from_tensor(x.detach().float().cpu())
        if self.gray:
            pixels = pixels.mean(axis=0, keepdims=True)
        return images.Image(pixels, self._alpha_out(), self.stored, self.name)

    def _alpha_out(self) -> np.ndarray | None:
        if self.alpha is None or self.alpha.shape == self.size:
            return self.alpha
        a = torch.from_numpy(self.alpha)[None, None]
        return F.interpolate(a, size=self.size, mode="bilinear", align_corners=False)[0, 0].numpy()


def provenance(problems: list[Problem]) -> dict[str, Any]:
    """What a mask artifact records about the images it was searched on: the operator, and each
    image's name, pixel hash and size."""
    return {"operator": problems[0].op.params(),
            "images": [{"name": p.name, "sha256": p.sha256, "height": p.size[0], "width": p.size[1]}
                       for p in problems]}


def _rgb(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(C,H,W) or (1,C,H,W) pixels as a (1,3,H,W) float tensor; gray is replicated."""
    t = torch.as_tensor(np.ascontiguousarray(pixels) if isinstance(pixels, np.ndarray) else pixels).float()
    t = t.reshape(1, -1, *t.shape[-2:])
    return t.expand(1, 3, *t.shape[-2:]).clone() if t.shape[1] == 1 else t


def _memory_cost(task: str, settings: dict[str, Any], simulate: bool) -> Callable[[int, int], str]:
    """For refusing an oversized image from its header: the memory restoring it would need."""
    def cost(width: int, height: int) -> str:
        try:
            spec = nets.resolve_spec(settings["net"])
            s = 1 if simulate else TASKS.get(task).upscale(settings)
            size = nets.padded_size(nets.build(spec), height * s, width * s)
            need = nets.estimate_bytes(spec, *size, "bf16" if settings.get("precision") == "bf16" else "fp32",
                                       checkpoint=True)
        except Exception:  # only enriches a message: never fail on it
            return ""
        return f"restoring it would need about {need / 2**30:,.0f} GiB of memory"
    return cost


def load_problem(path: images.Source, task: str, settings: dict[str, Any], *, simulate: bool, seed: int,
                 inpaint_mask: Path | None = None, clean: images.Source | None = None,
                 max_pixels: int | None = None) -> Problem:
    """Read an image (a file, an array or an Image: images.as_image) and build its problem.

    simulate=False: the image IS the degraded observation (the real use); `clean` is optional and
    only scores the result. simulate=True: the image is clean; it is degraded here (seeded) and
    becomes the reference.
    """
    img = images.as_image(path, max_pixels=max_pixels, cost=_memory_cost(task, settings, simulate))
    gray = img.channels == 1
    native = torch.from_numpy(np.ascontiguousarray(img.pixels)).float()[None]
    h, w = img.height, img.width
    if simulate and clean is not None:
        raise LipError("--clean and --simulate exclude each other: with --simulate the input is the clean image")
    kind = TASKS.get(task)
    if not simulate:
        kind.check_real(inpaint_mask)
    op = kind.build(settings, h, w, gray, inpaint_mask, seed)
    if simulate:
        y, ref, size = op(native, torch.Generator().manual_seed(seed)), _rgb(native), (h, w)
    else:
        y, ref, size = kind.read_real(op, native), None, op.output_size(h, w)
        if clean is not None:
            ref_img = images.as_image(clean, max_pixels=max_pixels)
            if (ref_img.height, ref_img.width) != size:
                raise LipError(f"--clean {ref_img.name} is {ref_img.width}x{ref_img.height} but the "
                               f"restored image will be {size[1]}x{size[0]}")
            ref = _rgb(ref_img.pixels)
    return Problem(name=img.name, y=_rgb(y), task=kind, op=op, size=size, gray=gray, alpha=img.alpha,
                   stored=img.stored, sha256=images.pixel_hash(img), clean=ref)
