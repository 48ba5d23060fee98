"""Reading and writing user images: the only module that touches image files (and image arrays).

Everything inside lip works on float32 arrays shaped (C, H, W) in [0, 1]; this module
converts from and to files and numpy arrays, so colour modes, bit depths, value ranges, EXIF
rotation and broken files are dealt with once, here, and every failure becomes a one-line LipError.
Each image remembers how its source stored its values (`Stored`), so a result is written back the
same way: 8 or 16 bits, a float TIFF or a .npy array in its own dtype and range.
Pillow reads and writes the common formats; `imageformats.py` the ones it would narrow or refuse
(.npy, TIFFs and PGM/PPM with more than 8 bits per sample) and `png16.py` 16-bit PNGs.
"""
from __future__ import annotations

import hashlib
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from . import imageformats as formats, png16
from .errors import LipError
from .files import atomic_path, is_stream

# Errors Pillow raises for truncated or corrupt data, depending on format and where it breaks.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)

# Suffix -> format name (Pillow's, or NPY). No suffix means PNG.
_FORMATS = {"": "PNG", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG",
            ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP", ".npy": "NPY"}


def names_image_file(path: Path) -> bool:
    """`path` ends in a suffix lip writes images to (out/x.png is a file meant, not a folder)."""
    return bool(path.suffix) and path.suffix.lower() in _FORMATS


def _writable() -> str:
    """The writable types for messages, one suffix per format (.jpg, not .jpeg too), in _FORMATS' order."""
    first: dict[str, str] = {}
    for suffix, fmt in _FORMATS.items():
        if suffix:
            first.setdefault(fmt, suffix)
    *head, last = first.values()
    return f"{', '.join(head)} or {last}"


_WRITABLE = _writable()
# Lossy formats are written near-losslessly: a restored image should not lose in the file what the fit gained
# (the README's restored House scores 30.93 dB as PNG, 30.06 as PIL's default JPEG, quality 75 with colour halved
# (4:2:0), 30.71 at 95 and 4:2:0, 30.79 at 95 and 4:4:4). Halved colour cost a colourful 32x32 restore 3.2 dB.
_SAVE_OPTIONS = {"JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"lossless": True}}
_KEEP_TYPE = (".tif", ".tiff", ".npy")  # outputs that stay in the input's type by default (see output_suffix)
TENSOR_LAYOUTS = ("CHW", "NCHW")  # Stored.layout of torch tensors; numpy arrays are HW or HWC


@dataclass(frozen=True)
class Stored:
    """How a source held its samples, so a result goes back the same way.

    `dtype` is the numpy sample type; `lo` and `hi` are the values that mean 0 and 1 inside lip
    (the type's full range for uint8/uint16, [0, 1] for floats already inside it, else the data's
    own min..max); `layout` is the array layout of an array or .npy source (see from_array); `icc` is the
    source's ICC colour profile, which outputs that can hold one keep (a wide-gamut photo would otherwise
    be shown as sRGB, its colours off).
    """

    dtype: str = "uint8"
    lo: float = 0.0
    hi: float = 255.0
    layout: str = "HW"
    icc: bytes | None = None

    def profile_for(self, channels: int) -> bytes | None:
        """The ICC profile an output of `channels` (1 gray, 3 colour) can carry: one of its colour space only
        (a colour profile in a gray file is invalid, and the other way round)."""
        space = self.icc[16:20] if self.icc is not None and len(self.icc) >= 128 else None
        return self.icc if space == (b"GRAY" if channels == 1 else b"RGB ") else None

    @property
    def bit_depth(self) -> int:
        return int(np.dtype(self.dtype).itemsize * 8)


UINT8 = Stored()
UINT16 = Stored("uint16", 0.0, 65535.0)


@dataclass(frozen=True, eq=False)
class Image:
    """A decoded image: pixels (C,H,W) float32 in [0,1], C = 1 (gray) or 3 (RGB).

    `alpha` (H,W) is carried separately so restoration never sees transparency but the
    output can keep it; `stored` lets the output keep the input's sample type, range and layout.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    stored: Stored
    name: str

    @property
    def bit_depth(self) -> int:
        return self.stored.bit_depth

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])


def _frames(im: PILImage.Image) -> int:
    """How many full-size images a file holds: animation frames, TIFF pages (a smaller thumbnail page does not
    count); Pillow would quietly give the first."""
    count = getattr(im, "n_frames", 1)
    if count > 1:
        size, count = im.size, 0
        for k in range(im.n_frames):
            im.seek(k)
            count += im.size == size
        im.seek(0)
    return count


def _read(path: Path, check_size: Callable[[int, int], None] | None = None) -> tuple[PILImage.Image, int]:
    """Open, size-check (from the header, before decoding), fully decode and EXIF-rotate with Pillow;
    also return the EXIF orientation that was applied (1 = none), for pixels decoded elsewhere.

    `check_size(width, height)` raises LipError to refuse a file before its pixels are
    decoded, so an oversized or hostile file costs nothing. When a check is given it
    replaces Pillow's own decompression-bomb limit (restored afterwards).
    """
    formats.check_file(path)
    saved_limit = PILImage.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            if check_size is not None:
                PILImage.MAX_IMAGE_PIXELS = None
            with PILImage.open(path) as im:
                if check_size is not None:
                    check_size(*im.size)
                frames = _frames(im)
                if frames > 1:
                    raise LipError(f"cannot read {path}: it holds {frames} images (frames or pages); lip restores "
                                   "one: save the one you want as its own file")
                im.load()
                orientation = int(im.getexif().get(0x0112, 1) or 1)
                rotated = ImageOps.exif_transpose(im)
                # exif_transpose returns a new image; make sure nothing still refers to the file.
                return (rotated if rotated is not im else im.copy()), orientation
    except LipError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise LipError(f"cannot read {path}: too many pixels to decode safely ({formats.one_line(exc)}); "
                       "resize or crop it first") from None
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            npy = f.read(len(formats.NPY_MAGIC)) == formats.NPY_MAGIC
        raise LipError(f"cannot read {path}: " + ("it is a .npy array: give it the .npy suffix" if npy else
                       "not an image file Pillow recognises (use PNG, JPEG, TIFF, BMP or .npy)")) from None
    except PermissionError:
        raise LipError(f"cannot read {path}: permission denied (check the file's permissions)") from None
    except _DECODE_ERRORS as exc:
        raise formats.corrupt(path, exc) from None
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved_limit


def _unit(a: np.ndarray, maxval: float) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32) / np.float32(maxval)


SAMPLE_PREFIX = "sample:"
MAX_PIXELS = 64_000_000  # the commands refuse larger inputs from the header, before decoding them


def resolve(path: Path | str, suffix: str = ".png") -> Path:
    """`sample:NAME` names a file bundled with lip (lipcli/data/NAME + suffix); other paths pass through.
    A file of the working folder named so is refused, not silently passed over: `./sample:NAME` reaches
    here as `sample:NAME` (a path argument drops the ./)."""
    text = str(path)
    if text.startswith(SAMPLE_PREFIX):
        if Path(text).exists():
            raise LipError(f"{text} names both a sample bundled with lip and the file ./{text}: give the file by "
                           f"its full path ({Path(text).absolute()}), or rename it")
        return Path(__file__).parent / "data" / f"{text[len(SAMPLE_PREFIX):]}{suffix}"
    return Path(path)


def beside(path: Path | str, tail: str) -> Path:
    """The output named after an input (its stem + `tail`, e.g. "_restored.png"): beside the input, or in
    the working folder for a bundled sample."""
    folder = Path(".") if str(path).startswith(SAMPLE_PREFIX) else Path(path).parent
    return folder / f"{resolve(path).stem}{tail}"


def check_readable(paths: list[Path]) -> None:
    """Refuse a missing input or a folder before the first run, not after it."""
    for path in paths:
        if not resolve(path).is_file():
            what = formats.not_a_file(resolve(path))
            if str(path).startswith(SAMPLE_PREFIX):
                what = "no such sample (bundled: " + ", ".join(SAMPLE_PREFIX + p.stem for p in sorted(
                    resolve(SAMPLE_PREFIX).parent.glob("*.png")) if not p.stem.endswith("_samples")) + ")"
            raise LipError(f"cannot read {path}: {what}")


def check_given_once(sources: list[Any], what: str) -> None:
    """Refuse one file given twice, however spelt (./a.png, its absolute path, a link to it): it would be restored
    twice, or its two outputs clash. Arrays are no files."""
    seen: dict[str, int] = {}  # a file's real path -> the position it was first given at
    for k, p in enumerate(sources):
        where = os.path.realpath(resolve(p)) if isinstance(p, (str, Path)) else None
        if where is not None and seen.setdefault(where, k) != k:
            first = sources[seen[where]]
            how = f"also as {first}" if str(first) != str(p) else "a glob and its own name?"
            raise LipError(f"{p} is given twice ({how}): give each {what} once")


class _Peeked(Exception):
    """Raised from load_image's size check to stop there: `header_size`."""


def header_size(path: Path | str) -> tuple[int, int] | None:
    """(width, height) from the file's header, nothing decoded, for every format load_image reads (.npy, TIFF,
    PNG, ...: each reader checks the size from its header first); None when it cannot be read (loading it
    later says why in one line)."""
    def peek(width: int, height: int) -> None:
        raise _Peeked(width, height)
    try:
        load_image(path, fits=peek)
    except _Peeked as size:
        return size.args[0], size.args[1]
    except Exception:  # any failure here is reported by load_image, where it matters
        return None
    return None


def load_image(path: Path | str, *, max_pixels: int | None = None,
               cost: Callable[[int, int], str] | None = None,
               fits: Callable[[int, int], None] | None = None) -> Image:
    """Load an image file as gray or RGB (+ alpha), EXIF orientation applied, its sample type kept.

    16-bit PNGs and TIFFs stay 16-bit, float TIFFs and .npy arrays keep their dtype and range
    (`Stored`); Pillow's other files are 8-bit. `max_pixels` refuses large files from the header,
    before spending memory on them; `cost(width, height)` may say what processing that size would
    need (added to the refusal); `fits(width, height)`, called from the header too, may refuse a size.
    """
    path = resolve(path)

    def check(width: int, height: int) -> None:
        if max_pixels is not None and width * height > max_pixels:
            need = cost(width, height) if cost is not None else ""
            raise LipError(f"cannot read {path}: it is {width}x{height} = {width * height:,} pixels, "
                           f"more than the limit of {max_pixels:,}" + (f" ({need})" if need else "")
                           + "; resize or crop it first")
        if fits is not None:
            fits(width, height)

    size_check = check if max_pixels is not None or fits is not None else None
    if path.suffix.lower() == ".npy":
        return from_array(formats.read_npy(path, size_check), path.name)
    formats.check_file(path)
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:4] in formats.TIFF_MAGIC:
        deep = formats.read_tiff(path, size_check)
        if deep is not None:
            return _with_profile(from_array(deep[0], path.name), deep[1])
    if head[:2] in formats.NETPBM_MAGIC:
        samples = formats.read_netpbm(path, size_check)
        if samples is not None:
            return from_array(samples, path.name)
    im, orientation = _read(path, size_check)
    icc = im.info.get("icc_profile") or None
    png = png16.header(head)
    if png is not None and png[2] == 16:  # Pillow narrows 16-bit colour to 8 bits: decode it here
        try:
            samples = png16.decode(path.read_bytes())
        except _DECODE_ERRORS as exc:
            raise formats.corrupt(path, exc) from None
        return _with_profile(from_array(formats.upright(samples if samples.shape[2] > 1 else samples[..., 0],
                                                        orientation), path.name), icc)
    mode = im.mode
    alpha = None
    stored = UINT8
    if mode.startswith("I;16") or mode == "I":
        # 16-bit gray (Pillow uses "I" for some 16-bit files); clip guards 32-bit files.
        gray = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        pixels, stored = _unit(gray, 65535)[None], UINT16
    elif mode == "F":
        return from_array(np.asarray(im, dtype=np.float32), path.name)
    elif mode in ("1", "L") and "transparency" in im.info or mode in ("LA", "La"):
        arr = np.asarray(im.convert("LA"))  # a gray tRNS colour becomes real alpha
        pixels, alpha = _unit(arr[..., 0], 255)[None], _unit(arr[..., 1], 255)
    elif mode in ("1", "L"):
        pixels = _unit(np.asarray(im.convert("L")), 255)[None]
    elif mode in NOT_RGB:  # Pillow's convert("RGB") copies their bands as if they were R, G and B
        raise LipError(f"{path.name} is a {NOT_RGB[mode]} image; lip reads RGB, CMYK and gray images: convert "
                       "it to RGB first")
    else:
        has_alpha = (mode in ALPHA_MODES or "transparency" in im.info
                     or (mode == "P" and im.palette is not None and im.palette.mode == "RGBA"))
        arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
        rgb = arr[..., :3]
        if mode == "P" and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            pixels = _unit(rgb[..., 0], 255)[None]  # gray palette: no need for three equal channels
        else:
            pixels = _unit(rgb.transpose(2, 0, 1), 255)
        if has_alpha:
            alpha = _unit(arr[..., 3], 255)
    return _with_profile(Image(pixels=pixels, alpha=alpha, stored=stored, name=path.name), icc)


ALPHA_MODES = ("RGBA", "RGBa", "PA", "LA", "La")  # Pillow's modes with an alpha band ("LAB" has none)
NOT_RGB = {"LAB": "CIELAB", "HSV": "HSV"}  # colour modes whose bands are not R, G, B


def _with_profile(img: Image, icc: bytes | None) -> Image:
    return img if icc is None else replace(img, stored=replace(img.stored, icc=bytes(icc)))


def _value_range(a: np.ndarray) -> tuple[float, float]:
    """The values that mean 0 and 1: a uint8/uint16 type's full range, [0, 1] for floats inside it,
    else the data's own min..max (a constant image: lo == hi, so it maps to 0 and comes back as itself)."""
    if a.dtype in (np.uint8, np.uint16):
        return 0.0, float(np.iinfo(a.dtype).max)
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind == "f" and lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if not np.isfinite(hi - lo):
        raise LipError(f"its values span {lo:.3g} to {hi:.3g}, more than lip can scale: divide them by a "
                       "common factor first")
    return lo, hi


def fixed_range(stored: Stored) -> bool:
    """Whether `stored`'s 0..1 is its type's meaning (uint8/uint16's full range, floats in [0, 1]) rather than one
    image's own min..max."""
    return stored.dtype in ("uint8", "uint16") or (np.dtype(stored.dtype).kind == "f" and
                                                   (stored.lo, stored.hi) == (0.0, 1.0))


def reference_units(ref: Image, stored: Stored) -> tuple[np.ndarray, float, float]:
    """Where a clean reference and the restored output of a source stored as `stored` are compared: the
    reference's pixels and the map (a, b) that takes the output's 0..1 to them (output * a + b). Pixels are
    compared as the values they hold: in the reference's units where its range is fixed (see `fixed_range`: a noisy
    float image spread past [0, 1] is scored against its [0, 1] reference with peak 1); else in the input's where
    that is fixed (an 8-bit photo against a float 0..255 copy of its reference as against the 8-bit one); else, both
    ranges being their own min..max, in the reference's (a noisy float 0..255 image against its float reference:
    peak the reference's span, not the noise's, which made the score depend on how far the noise reached). A
    constant reference is scored in the input's units. Two fixed ranges are the same scale. An input of one value
    writes that value whatever the output (a = 0)."""
    own = not fixed_range(stored) and ref.stored.hi > ref.stored.lo  # neither range fixed: the reference's own
    if fixed_range(ref.stored) or own:
        if fixed_range(ref.stored) and fixed_range(stored):
            return ref.pixels, 1.0, 0.0
        span = ref.stored.hi - ref.stored.lo
        return ref.pixels, (stored.hi - stored.lo) / span, (stored.lo - ref.stored.lo) / span
    values = ref.pixels.astype(np.float64) * (ref.stored.hi - ref.stored.lo) + ref.stored.lo
    span = stored.hi - stored.lo
    return ((values - stored.lo) / (span or 1.0)).astype(np.float32), 1.0 if span else 0.0, 0.0


def from_array(arr: np.ndarray | torch.Tensor, name: str = "the array", layout: str | None = None) -> Image:
    """An image from a numpy array HxW (gray) or HxWxC (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) of
    any integer or float type, or a torch tensor CxHxW / 1xCxHxW; `Stored` records its dtype, value
    range (see _value_range) and layout, so `to_array` gives a result back in the same form."""
    if isinstance(arr, torch.Tensor):
        t = arr.detach().cpu()
        layout = layout or ("NCHW" if t.dim() == 4 else "CHW")
        if t.dim() not in (3, 4) or (t.dim() == 4 and t.shape[0] != 1) or not 1 <= t.shape[-3] <= 4:
            last = " (channels last? use x.permute(2, 0, 1))" if t.dim() == 3 and 1 <= t.shape[-1] <= 4 else ""
            raise LipError(f"{name} has shape {tuple(t.shape)}: give a tensor CxHxW or 1xCxHxW with C = 1 (gray), "
                           f"2 (gray+alpha), 3 (RGB) or 4 (RGBA){last}")
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: float32 holds its values (and is what comes back)
            t = t.float()
        arr = np.moveaxis(t.reshape(t.shape[-3:]).numpy(), 0, -1)
    a = np.asarray(arr)
    if a.dtype.kind not in "uif":
        raise LipError(f"{name} has dtype {a.dtype}: give integer or float pixel values")
    layout = layout or ("HW" if a.ndim == 2 else "HWC")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4 or a.size == 0:
        hint = " (channels first? use np.moveaxis(a, 0, -1))" if a.ndim == 3 and 1 <= a.shape[0] <= 4 else ""
        raise LipError(f"{name} has shape {tuple(np.shape(arr))}: give HxW or HxWxC with C = 1 (gray), "
                       f"2 (gray+alpha), 3 (RGB) or 4 (RGBA){hint}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        raise LipError(f"{name} has {bad:,} NaN or infinite values: replace them first (np.nan_to_num)")
    try:
        lo, hi = _value_range(a)
    except LipError as exc:
        raise LipError(f"{name}: {exc}") from None
    unit = ((a.astype(np.float64) - lo) / ((hi - lo) or 1.0)).astype(np.float32)
    colour = 1 if a.shape[2] <= 2 else 3
    alpha = np.ascontiguousarray(unit[..., colour]) if a.shape[2] in (2, 4) else None
    return Image(pixels=np.ascontiguousarray(unit[..., :colour].transpose(2, 0, 1)), alpha=alpha,
                 stored=Stored(a.dtype.name, lo, hi, layout), name=name)


def _samples(x: np.ndarray, stored: Stored) -> np.ndarray:
    """[0,1] floats -> the stored type and range; NaN becomes 0, values outside [0,1] are clipped."""
    x = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    x = x * (stored.hi - stored.lo) + stored.lo
    dtype = np.dtype(stored.dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        x = np.round(x)
        top = x >= float(info.max)  # for 64-bit types float(max) is max + 1, which would wrap to the minimum
        samples = np.clip(np.where(top, 0.0, x), info.min, info.max).astype(dtype)
        samples[top] = info.max
        return samples
    return x.astype(dtype)


def _hwc(img: Image, stored: Stored) -> np.ndarray:
    """Pixels and alpha as one (H, W, C) array of stored samples, alpha last."""
    planes = [img.pixels] + ([img.alpha[None]] if img.alpha is not None else [])
    return _samples(np.concatenate(planes).transpose(1, 2, 0), stored)


def to_array(img: Image) -> np.ndarray | torch.Tensor:
    """The image in its source's form (`img.stored`): dtype, value range and layout, alpha last."""
    hwc = _hwc(img, img.stored)
    if img.stored.layout in TENSOR_LAYOUTS:
        t = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
        return t[None] if img.stored.layout == "NCHW" else t
    return hwc[..., 0] if img.stored.layout == "HW" and hwc.shape[2] == 1 else hwc


Source = Path | str | np.ndarray | torch.Tensor | Image  # what the commands and the Python API read


def source_name(source: Source) -> str:
    """What reports call an image: the file's name, or the Image's / array's given name."""
    if isinstance(source, Image):
        return source.name
    return "the array" if isinstance(source, (np.ndarray, torch.Tensor)) else resolve(source).name


def as_image(source: Source, **load: Any) -> Image:
    """An Image from a file (load_image's keyword arguments apply), an array or tensor, or an Image."""
    if isinstance(source, Image):
        return source
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return from_array(source)
    if not isinstance(source, (str, Path)):
        several = " (one image per call: call it once for each)" if isinstance(source, (list, tuple)) else ""
        raise LipError(f"an image is a file path, a numpy array, a torch tensor or a lipcli.images.Image, not "
                       f"{type(source).__name__}{several}")
    return load_image(source, **load)


def check_suffix(path: Path | str) -> str:
    """The format an output path asks for; an unknown suffix is refused (call it up front), and so is none for a
    file (`-o results` is more often a folder meant than an image); stdout, devices and pipes get PNG."""
    path = Path(path)
    if not path.suffix and not is_stream(path):
        raise LipError(f"cannot write {path}: give it an image type suffix ({_WRITABLE})")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LipError(f"cannot write {path}: unknown image type '{path.suffix}' (use {_WRITABLE})")
    return fmt


def output_suffix(path: Path | str) -> str:
    """The default output type for an input: TIFF and .npy stay what they are (their sample type and
    range survive); everything else becomes PNG (lossless; 16-bit when the input had more than 8 bits)."""
    suffix = resolve(path).suffix.lower()
    return suffix if suffix in _KEEP_TYPE else ".png"


def narrowed(path: Path | str, alpha: bool, stored: Stored, channels: int = 3) -> list[str]:
    """What writing an image (`channels` 1 or 3, with `alpha`, its samples `stored` so) to `path`'s format loses;
    save_image writes it all the same, so that a long run is never lost, and a caller says so before the run."""
    fmt, lost = check_suffix(path), []
    if alpha and fmt in ("JPEG", "BMP"):
        lost.append("transparency (JPEG has none)" if fmt == "JPEG" else "transparency (most readers ignore a BMP's)")
    if stored.icc is not None and fmt in ("BMP", "NPY"):
        lost.append(f"its ICC colour profile ({'a BMP' if fmt == 'BMP' else 'an .npy array'} keeps none)")
    elif stored.icc is not None and stored.profile_for(channels) is None:
        space = stored.icc[16:20].decode("latin-1").strip() if len(stored.icc) >= 128 else ""
        lost.append(f"its ICC colour profile (made for {space or 'other'} images; the output is "
                    f"{'gray' if channels == 1 else 'RGB'})")
    elif stored.icc is not None and fmt == "WEBP" and channels == 1:
        lost.append("its gray ICC colour profile (WebP stores gray as RGB; .png or .tif keeps it)")
    kind = np.dtype(stored.dtype).kind
    if fmt in ("JPEG", "BMP", "WEBP") and kind == "u" and stored.bit_depth > 8:
        lost.append(f"{stored.bit_depth}-bit samples ({fmt} holds 8 bits)")
    if fmt == "PNG" and kind == "u" and stored.bit_depth > 16:
        lost.append(f"{stored.bit_depth}-bit samples (PNG holds 16 bits; .npy or .tif keeps them)")
    if fmt in ("PNG", "JPEG", "BMP", "WEBP") and kind != "u":
        held = "integers" if kind == "f" else "unsigned integers, so they are stretched to its range"
        lost.append(f"{stored.dtype} values ({fmt} holds {held}; .npy or .tif keeps them)")
    if fmt == "JPEG":  # last: what the format cannot hold comes first
        lost.append("detail (JPEG is lossy, quality 95: the scores lip reports are of the image before it is encoded)")
    return lost


def save_image(path: Path | str, pixels: np.ndarray, *, alpha: np.ndarray | None = None,
               stored: Stored = UINT8) -> None:
    """Write (C,H,W) float pixels in [0,1] atomically; the format comes from the suffix.

    .npy and TIFF keep `stored` exactly (dtype, range; .npy also the layout). PNG is 16-bit when the
    source had more than 8 bits per sample, else 8-bit; JPEG (quality 95), BMP and WebP (lossless) are
    8-bit. Every format but .npy and BMP keeps the source's ICC profile. Limits of the file formats are
    handled rather than refused so a long run is never lost: JPEG drops alpha, BMP stores gray+alpha as RGBA,
    WebP stores gray as RGB.
    """
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"pixels must be shaped (C,H,W) with C 1 or 3, got {pixels.shape}")
    fmt = check_suffix(path)
    img = Image(pixels, None if fmt == "JPEG" else alpha, stored, path.name)
    if fmt == "NPY":
        arr = to_array(replace(img, stored=replace(stored, layout="HWC" if stored.layout == "HWC" else "HW")))
        formats.save_npy(path, arr)
        return
    icc = stored.profile_for(pixels.shape[0])
    if fmt == "TIFF":
        with atomic_path(path) as tmp:
            formats.write_tiff(tmp, _hwc(img, stored), colour=pixels.shape[0] == 3, alpha=img.alpha is not None,
                               icc=icc)
        return
    if fmt == "PNG" and stored.bit_depth > 8:
        with atomic_path(path) as tmp:
            tmp.write_bytes(png16.encode(_hwc(img, UINT16), icc))
        return
    hwc = _hwc(img, UINT8)
    if fmt in ("BMP", "WEBP") and hwc.shape[2] <= 2:  # stored as RGB(A): a gray profile would not fit it
        icc = None
    if fmt == "BMP" and hwc.shape[2] == 2:
        hwc = np.concatenate([np.repeat(hwc[..., :1], 3, axis=2), hwc[..., 1:]], axis=2)
    im = PILImage.fromarray(np.ascontiguousarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc))  # L/LA/RGB/RGBA
    options = {**_SAVE_OPTIONS.get(fmt, {}), **({"icc_profile": icc} if icc and fmt != "BMP" else {})}
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **options)


def pixel_hash(img: Image) -> str:
    """SHA-256 of the decoded pixels, so the same picture hashes the same in any file.

    Covers shape, bit depth, pixel values (HWC: uint8 or big-endian uint16 for 8- and 16-bit
    integer sources, else the float32 values in [0,1]) and alpha, never file bytes, which change
    with compression settings and metadata.
    """
    if img.stored.dtype in ("uint8", "uint16"):
        data, dtype, bits = _hwc(img, img.stored), ">u2" if img.bit_depth == 16 else "u1", str(img.bit_depth)
    else:
        planes = [img.pixels] + ([img.alpha[None]] if img.alpha is not None else [])
        data, dtype, bits = np.concatenate(planes).transpose(1, 2, 0), "<f4", "f32"
    header = f"lip-pixels v1 {img.height}x{img.width}x{img.channels} bits={bits} " \
             f"alpha={int(img.alpha is not None)}\n"
    digest = hashlib.sha256(header.encode())
    digest.update(np.ascontiguousarray(data, dtype=dtype).tobytes())
    return digest.hexdigest()


def load_binary_mask(path: Path | str, height: int, width: int) -> np.ndarray:
    """Load an inpainting mask (white = kept, black = missing) as bool (H,W): an image, or a .npy array of
    0/1 or booleans.

    Only pure 0/255 (or 0/1) is accepted: gray edges from anti-aliasing or JPEG would silently
    decide which pixels are trusted, so the user is asked to threshold instead. A mask with transparency (holes
    erased in an image editor) keeps a pixel only where it is white and opaque; its alpha must be 0 or 255 too.
    """
    path = Path(path)

    def check(w: int, h: int) -> None:
        # Pixel count is rotation-independent, so this is safe before EXIF is applied.
        if w * h != width * height:
            raise LipError(f"mask {path} is {w}x{h} but the image is {width}x{height} "
                           "(make the mask the same size as the image)")

    npy = path.suffix.lower() == ".npy"
    if npy:
        arr = formats.read_npy(path, check)
        arr = arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise LipError(f"mask {path} is an array of shape {arr.shape} and dtype {arr.dtype}; a .npy mask is an "
                           "(H, W) array of 0/1 or booleans")
    else:
        im = _read(path, check)[0]
        if not (im.mode in ("1", "L", "LA", "La", "I", "F") or im.mode.startswith("I;")):  # colour: gray it is not
            rgb = np.asarray(im.convert("RGB"))
            coloured = int((rgb.max(axis=-1) != rgb.min(axis=-1)).sum())
            if coloured:
                raise LipError(f"mask {path} has {coloured} coloured pixels: a mask is black-and-white (white "
                               "keeps a pixel, black or transparent marks it missing)")
        arr = np.asarray(im.convert("L"))
        if im.mode in ALPHA_MODES or "transparency" in im.info:
            alpha = np.asarray(im.convert("RGBA").getchannel("A"))
            partial = np.unique(alpha[(alpha != 0) & (alpha != 255)])
            if partial.size:
                raise LipError(f"mask {path} is partly transparent: {partial.size} alpha values besides 0 and 255 "
                               "(make each pixel opaque or fully transparent, which marks it missing)")
            arr = np.where(alpha == 255, arr, 0)
    if arr.shape != (height, width):
        raise LipError(f"mask {path} is {'x'.join(map(str, arr.shape[::-1]))} but the image is {width}x{height} "
                       "(make the mask the same size as the image)")
    values = np.unique(arr)
    on = 255 if values.max(initial=0) > 1 else 1  # 0/255 (black and white), or 0/1 (an array, a 0/1 PNG)
    other = values[(values != 0) & (values != on)]
    if other.size and npy:
        shown = ", ".join(f"{v:g}" for v in other[:3]) + (", ..." if other.size > 3 else "")
        raise LipError(f"mask {path} holds values other than 0 and 1 ({shown}): a .npy mask is 0/1 or booleans "
                       "(0/255 is read too)")
    if other.size:
        raise LipError(f"mask {path} is not black-and-white: it has {other.size} gray values besides 0 and {on} "
                       f"(threshold it: values at or above the middle become {on})")
    if not values.any():
        raise LipError(f"mask {path} observes no pixel: it is all black or transparent (white and opaque marks "
                       "the pixels that are kept)")
    kept = arr == on
    if kept.all():
        raise LipError(f"mask {path} observes every pixel: it is all white, so there is nothing to inpaint (black "
                       "or transparent marks the missing pixels)")
    return kept


def to_tensor(img: Image) -> torch.Tensor:
    """Pixels as a fresh (1,C,H,W) float32 tensor (a copy, so training never alters the Image)."""
    return torch.tensor(img.pixels, dtype=torch.float32).unsqueeze(0)


def from_tensor(t: torch.Tensor) -> np.ndarray:
    """A (1,C,H,W) or (C,H,W) tensor back to a (C,H,W) float32 numpy array (a copy)."""
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(t.shape)}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"expected (1,C,H,W) or (C,H,W), got shape {tuple(t.shape)}")
    return t.numpy().copy()


def as_channels(x: torch.Tensor, c: int) -> torch.Tensor:
    """Pixels (..., C, H, W) as `c` channels where a gray image meets a three-channel net: the net fits the
    gray image in each of its channels (replicated, a fresh tensor) and its three channels stand for the gray
    image by their mean. Other channel counts are returned unchanged (for the caller to check)."""
    have = x.shape[-3]
    if (have, c) == (3, 1):
        return x.mean(dim=-3, keepdim=True)
    if (have, c) == (1, 3):
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    return x
