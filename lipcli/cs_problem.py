'''`lip cs`'s problem: the measurements y, the operator that made them, the image size and the clean
reference, from whichever inputs the user gave.

- `--simulate`: a clean image (or `mnist:K`, a held-back test digit) measured by lip: a seeded operator
  named by `--operator` (or described by an operator file), or the user's `--matrix`, plus seeded noise
  and outliers. The clean image is the reference.
- measurements from files: `y.npy` with `--matrix A.npy --shape H,W[,C]`, or with `--operator FILE`, the
  operator.yaml `--save-measurements` wrote (it rebuilds the same seeded A). `--clean` gives a reference.
- `--task inpaint`: an image and a pixel mask (read, or drawn for a simulated input).

Nothing here reads the reference to make the measurements.
'''
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import images as images_io, seeds
from .errors import LipError
from .gan import load_mnist
from .physics import TASKS, Inpaint, Physics
from .physics.measurements import (DEFAULTS, check_flags, check_source, flag_operator, hwc, is_operator_file,
                                   parse_shape, read_measurements)

MNIST_PREFIX = "mnist:"
CS_KEEP = 0.3  # lip cs --task inpaint --simulate: the fraction of pixels observed when --keep is not given


@dataclass
class CSInputs:
    """What the user gave `lip cs` (None: not given)."""

    source: str  # an image, mnist:K, or a measurements file y.npy
    task: str = "cs"  # cs | inpaint
    simulate: bool = False
    operator: str = "auto"  # a CS_OPERATORS name, auto, or an operator file
    matrix: Path | None = None
    shape: str | None = None  # --shape H,W[,C]
    measurements: int | None = None
    outliers: int | None = None
    noise: float | None = None
    outlier_value: float | None = None
    keep: float | None = None
    inpaint_mask: Path | None = None
    clean: Path | None = None
    seed: int = 0


@dataclass
class CSProblem:
    op: Physics
    y: torch.Tensor  # (1, m) measurements, or the (1, C, H, W) observed image for inpainting
    shape: tuple[int, int, int]  # (C, H, W) of the image to recover
    name: str  # for the default output name
    ref: torch.Tensor | None  # (1, C, H, W) clean image, for scoring only
    size: tuple[int, int]  # (H, W) of the result: the input's, smaller than `shape` when padded for a generator
    stored: images_io.Stored = images_io.UINT8  # an input image's sample type and its alpha, which the result keeps
    alpha: np.ndarray | None = None
    channels_read: int | None = None  # an input image's own channel count, where a generator's differs


def load_input(arg: str) -> tuple[torch.Tensor, str, images_io.Image | None]:
    """An image file (also returned as read: its sample type and alpha), or `mnist:K`: held-back test digit K
    (0..499, the digit K % 10, never trained on), 32x32."""
    if arg.startswith(MNIST_PREFIX):
        try:
            k = int(arg[len(MNIST_PREFIX):])
        except ValueError:
            raise LipError(f"{arg}: give a test digit index, e.g. mnist:0") from None
        test = load_mnist("test")[0]
        if not 0 <= k < test.shape[0]:
            raise LipError(f"{arg}: the held-back test digits are mnist:0 .. mnist:{test.shape[0] - 1}")
        return test[k:k + 1].clone(), f"mnist-test-{k}", None
    path = images_io.resolve(arg)
    img = images_io.load_image(path, max_pixels=images_io.MAX_PIXELS)
    return images_io.to_tensor(img), path.stem, img


def fit_shape(x: torch.Tensor, shape: tuple[int, ...], what: str, generator: bool = True,
              fill: float = 0.0) -> torch.Tensor:
    """`x` with the channel count (gray <-> RGB) and size of `shape`. For a generator (`generator`) a
    smaller image is padded with `fill` (zeros), centred, as the 28x28 MNIST digits were for training (crop
    results back with fit.crop_center); otherwise (the measured image's shape) only the same size is accepted."""
    c, h, w = shape
    x = images_io.as_channels(x, c)
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh < 0 or dw < 0 or (not generator and (dh, dw) != (0, 0)):
        made = ("the generator makes", ", or train a generator of that size") if generator else \
            ("the measurements are of", "")
        raise LipError(f"{what} is {x.shape[-1]}x{x.shape[-2]} but {made[0]} {w}x{h} images "
                       f"(crop/resize it{made[1]})")
    return torch.nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=fill)


def make_operator(inp: CSInputs, shape: tuple[int, int, int] | None, size: tuple[int, int] | None = None
                  ) -> Physics:
    """`cs`: m linear measurements (a given matrix, an operator file, or seeded: gaussian | dct | auto);
    `inpaint`: a pixel mask, read from `inpaint_mask` or, for a simulated input, a seeded Bernoulli draw
    keeping `keep` of the pixels. `shape` (C, H, W) is None when only the operator file knows it. `size`: the
    image's own (H, W) where it was zero-padded to `shape` for a generator: a mask of that size is read, and the
    padding, zeros the generator was trained with, counts as observed."""
    if inp.task == "cs":
        return flag_operator(shape, simulate=inp.simulate, operator=inp.operator, matrix=inp.matrix,
                             given=_given(inp), seed=inp.seed)
    assert shape is not None
    task = TASKS.get("inpaint")  # the operator lip restore --task inpaint builds, and its checks
    task.check_flags({"keep": inp.keep}, inp.simulate, inp.inpaint_mask)
    if not inp.simulate:
        task.check_real(inp.inpaint_mask)
    settings = {"keep": CS_KEEP if inp.keep is None else inp.keep}
    if inp.inpaint_mask is None or size is None or size == shape[1:]:
        return task.build(settings, shape[1], shape[2], shape[0] == 1, inp.inpaint_mask, inp.seed)
    op = task.build(settings, *size, shape[0] == 1, inp.inpaint_mask, inp.seed)
    return Inpaint(fit_shape(op.mask[None], (1, *shape[1:]), str(inp.inpaint_mask), fill=1.0)[0], op.source,
                   op.sha256)


def check_inputs(inp: CSInputs) -> None:
    """Refuse, before any file is read, flags that cannot mean anything together."""
    op_file = is_operator_file(inp.operator)
    if inp.task != "cs":
        used = [flag for flag, v in (("--matrix", inp.matrix), ("--shape", inp.shape), ("--operator FILE", op_file))
                if v]
        used += [f"--{k.replace('_', '-')}" for k, v in _given(inp).items() if v is not None]
        used += ["--operator"] if inp.operator != "auto" and not op_file else []
        if used:  # inpainting observes pixels: none of the measurement settings would be read
            raise LipError(f"{used[0]} is for --task cs")
    elif inp.keep is not None or inp.inpaint_mask is not None:
        raise LipError(f"{'--keep' if inp.keep is not None else '--inpaint-mask'} is for --task inpaint")
    else:
        check_flags(simulate=inp.simulate, operator=inp.operator, matrix=inp.matrix, shape=inp.shape,
                    given=_given(inp))


def _given(inp: CSInputs) -> dict[str, Any]:
    """The simulation flags the user gave (None: not given)."""
    return {k: getattr(inp, k) for k in DEFAULTS}


def load_problem(inp: CSInputs, generator_shape: tuple[int, int, int] | None) -> CSProblem:
    """The measurements, operator, size and reference; `generator_shape` (C, H, W) when a generator is
    the prior (the image must be of its size), None for the DIP."""
    check_inputs(inp)
    if inp.task == "cs" and not inp.simulate:
        return _from_files(inp, generator_shape)
    x, name, img = load_input(inp.source)
    size, read = (x.shape[2], x.shape[3]), x.shape[1]
    if generator_shape is not None:
        x = fit_shape(x, generator_shape, inp.source)
    shape = generator_shape or (x.shape[1], x.shape[2], x.shape[3])
    op = make_operator(inp, shape, size)
    y = op(x, seeds.generator(inp.seed)) if inp.simulate else op.A(x)
    ref = _clean(inp, shape, generator_shape is not None)
    kept = {} if img is None else {"stored": img.stored, "alpha": img.alpha}
    return CSProblem(op, y, shape, name, x if ref is None and inp.simulate else ref, size, **kept,
                     channels_read=read if read != shape[0] else None)


def _from_files(inp: CSInputs, generator_shape: tuple[int, int, int] | None) -> CSProblem:
    path = Path(inp.source)
    check_source(path, operator=inp.operator, matrix=inp.matrix, command="lip cs")
    shape = parse_shape(inp.shape) if inp.shape else generator_shape
    if generator_shape is not None and shape != generator_shape:
        raise LipError(f"--shape {inp.shape}: the generator makes {hwc(generator_shape)} images")
    op, y, size = read_measurements(path, shape, operator=inp.operator, matrix=inp.matrix, seed=inp.seed,
                                    padded=generator_shape is not None)
    return CSProblem(op, y, op.shape, path.stem, _clean(inp, op.shape, generator_shape is not None), size)


def _clean(inp: CSInputs, shape: tuple[int, int, int], generator: bool) -> torch.Tensor | None:
    """`--clean`: the reference image, in the recovered image's channels (its size must match)."""
    if inp.clean is None:
        return None
    return fit_shape(images_io.to_tensor(images_io.load_image(inp.clean)), shape, str(inp.clean), generator)
