"""FFT magnitude maps and difference maps of images against a reference (LIP Figs. 18-19, `lip spectra`).

Which frequencies does a restore keep? The map of an image is log(1 + |F|) of its channel mean, F its
2-D DFT with the zero frequency shifted to the centre (high frequencies at the borders). The image is
Hann-windowed first, as transfer's spectrum measure does: the jump where a non-periodic image wraps
around would otherwise draw the same bright cross through every map. Against the reference (the
first image: the clean one) each other image gets |map - reference map| (Fig. 19) and the pixel error
|image - reference| (mean over channels), in the reference's units (`_in_units`). Maps of one kind share one grey
scale so that they can be compared by eye: 0 is black and white is the kind's WHITE_PERCENTILE over all its
maps (the few brighter values, such as the zero frequency, saturate; the largest value would leave the rest
nearly black).
The scales are reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files, images as images_io, plot
from .errors import LipError

KINDS = {"fft": "log(1+|FFT|)", "fftdiff": "|log FFT - reference's|", "diff": "|image - reference|"}
WHITE_PERCENTILE = 99.5
OVERFLOW = 1e300  # |values| x pixels above this overflow float64 in an FFT sum or a difference
COMPOSITE = "spectra.png"  # every map in one figure


def log_magnitude(pixels: np.ndarray) -> np.ndarray:
    """(C,H,W) or (H,W) pixels -> (H,W) log(1 + |DFT|) of the Hann-windowed channel mean, DC at (H//2, W//2)."""
    x = np.asarray(pixels, dtype=np.float64)
    gray = x.mean(axis=0) if x.ndim == 3 else x
    h, w = gray.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(gray * window))))


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| per pixel, averaged over channels ((1,H,W) gray against (3,H,W) colour broadcasts)."""
    return np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean(axis=0)


@dataclass
class Maps:
    """The maps of images named `names` (the first the reference): `fft` for each, `fftdiff` and `diff`
    for each other one, and each kind's grey scale (the value shown white)."""

    names: list[str]
    fft: list[np.ndarray]
    fftdiff: list[np.ndarray]
    diff: list[np.ndarray]

    def scale(self, kind: str) -> float:
        values = [m.ravel() for m in getattr(self, kind)]
        return float(np.percentile(np.concatenate(values), WHITE_PERCENTILE)) if values else 0.0


def compute(names: list[str], pixels: list[np.ndarray]) -> Maps:
    """Every map of (C,H,W) images of one size, the first being the reference."""
    if len(pixels) < 1:
        raise ValueError("compute needs at least the reference image")
    fft = [log_magnitude(p) for p in pixels]
    return Maps(names, fft, [np.abs(f - fft[0]) for f in fft[1:]], [difference(p, pixels[0]) for p in pixels[1:]])


def gray8(values: np.ndarray, top: float) -> np.ndarray:
    """A map as 8-bit grey: 0 -> 0, `top` -> 255 (all black when top is 0: nothing differs)."""
    if top <= 0:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round(np.clip(values / top, 0, 1) * 255).astype(np.uint8)


def load(paths: list[Path]) -> tuple[list[str], list[np.ndarray]]:
    """The images' names (file stems, which name the output files) and (C,H,W) pixels, checked to share
    the reference's size and to have distinct names."""
    stems = [images_io.resolve(p).stem for p in paths]
    if len(set(stems)) < len(stems):
        twice = next(s for s in stems if stems.count(s) > 1)
        raise LipError(f"two images are named {twice!r}: their maps would share file names; rename one")
    loaded = [images_io.load_image(p, max_pixels=images_io.MAX_PIXELS) for p in paths]
    ref = loaded[0]
    for img in loaded[1:]:
        if (img.height, img.width) != (ref.height, ref.width):
            raise LipError(f"{img.name} is {img.width}x{img.height} but the reference {ref.name} is "
                           f"{ref.width}x{ref.height}: the maps compare images of one size")
    held = [_held(img) for img in loaded]
    for img, values in zip(loaded, held):
        top = float(np.abs(values).max())
        if top > OVERFLOW / (img.height * img.width):
            raise LipError(f"{img.name} holds values up to {top:.3g}: its Fourier sums and differences "
                           "would pass what float64 holds; scale the array down")
    return stems, [_in_units(img.stored, values, ref.stored) for img, values in zip(loaded, held)]


def _held(img: images_io.Image) -> np.ndarray:
    """The values the file holds, in float64 (integers exactly: lip reads them as float32 fractions)."""
    stored = img.stored
    values = img.pixels.astype(np.float64) * (stored.hi - stored.lo) + stored.lo
    return np.rint(values) if np.dtype(stored.dtype).kind in "iu" else values


def _in_units(stored: images_io.Stored, values: np.ndarray, ref: images_io.Stored) -> np.ndarray:
    """The (C,H,W) values an image `stored` so holds (`_held`), in the reference's unit: where its type fixes the
    range (8- and 16-bit samples, floats in [0, 1]) a fraction of that range, which other such images are in too, and
    other values are taken as the reference's type reads them (an int16 copy of an 8-bit image as 0..255); else the
    values themselves (signed or wide integers, floats past [0, 1]: lip's reader maps those by each image's own
    min..max, which would put a noisy image and its clean reference on different scales). In float64 from the values
    held, so that one picture stored two ways differs by exactly 0 (float32 fractions differ in the last bits, which
    the maps' scale drew)."""
    if images_io.fixed_range(stored) and images_io.fixed_range(ref):
        return (values - stored.lo) / (stored.hi - stored.lo)
    return (values - ref.lo) / (ref.hi - ref.lo) if images_io.fixed_range(ref) else values


def map_path(folder: Path, kind: str, name: str) -> Path:
    return folder / f"{kind}_{name}.png"


def _drawn(names: list[str]) -> dict[str, list[str]]:
    """The images each kind of map is drawn for: fft for all; with two or more, the difference kinds for
    those after the first (the reference)."""
    return {kind: names[0 if kind == "fft" else 1:] for kind in (KINDS if len(names) > 1 else ["fft"])}


def check_outputs(names: list[str], folder: Path, composite: bool = True) -> None:
    """Refuse now, before any map is written, a file `write` could not write (one of the command's inputs)."""
    if not folder.is_dir():
        return  # made by the command: nothing in it yet
    paths = [map_path(folder, kind, name) for kind, drawn in _drawn(names).items() for name in drawn]
    for path in paths + ([folder / COMPOSITE] if composite else []):
        files.check_writable(path)


def write(maps: Maps, folder: Path, composite: bool = True) -> dict[str, object]:
    """KIND_NAME.png for every map (one grey scale per kind) and spectra.png, all of them in one figure:
    rows fft / fftdiff / diff, a column per image. Returns what was written and the scales."""
    scales = {kind: maps.scale(kind) for kind in KINDS}
    written: dict[str, dict[str, str]] = {name: {} for name in maps.names}
    tiles: dict[str, list[tuple[str, np.ndarray | None]]] = {}
    for kind, drawn in _drawn(maps.names).items():
        offset = len(maps.names) - len(drawn)  # the difference maps start at the second image
        row: list[tuple[str, np.ndarray | None]] = [(maps.names[0] + " (reference)", None)] * offset
        for name, values in zip(drawn, getattr(maps, kind)):
            pixels = gray8(values, scales[kind])
            path = map_path(folder, kind, name)
            images_io.save_image(path, pixels[None].astype(np.float32) / 255)
            written[name][kind] = str(path)
            row.append((name, pixels))
        tiles[f"{kind}: {KINDS[kind]}, white = {scales[kind]:.3g}"] = row
    report: dict[str, object] = {"reference": maps.names[0], "maps": written, "scales": scales,
                                 "mean_abs_diff": {n: float(d.mean()) for n, d in zip(maps.names[1:], maps.diff)}}
    if composite:
        report["composite"] = str(plot.tile_grid(tiles, folder / COMPOSITE))
    return report
