"""Reading and writing user images: the only module that touches image files.

Everything inside lip works on float32 arrays shaped (C, H, W) in [0, 1]; this module
converts from and to files, so colour modes, bit depths, EXIF rotation and broken files
are dealt with once, here, and every failure becomes a one-line LipError.
"""
from __future__ import annotations

import hashlib
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .errors import LipError
from .files import atomic_path

# Errors Pillow raises for truncated or corrupt data, depending on format and where it breaks.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)

# Suffix -> Pillow format name. No suffix means PNG.
_FORMATS = {"": "PNG", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG",
            ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


@dataclass(frozen=True)
class Image:
    """A decoded image: pixels (C,H,W) float32 in [0,1], C = 1 (gray) or 3 (RGB).

    `alpha` (H,W) is carried separately so restoration never sees transparency but the
    output can keep it; `bit_depth` (8 or 16) lets the output keep the input's precision.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    name: str

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read(path: Path, check_size: Callable[[int, int], None] | None = None) -> PILImage.Image:
    """Open, size-check (from the header, before decoding), fully decode and EXIF-rotate.

    `check_size(width, height)` raises LipError to refuse a file before its pixels are
    decoded, so an oversized or hostile file costs nothing. When a check is given it
    replaces Pillow's own decompression-bomb limit (restored afterwards).
    """
    if not path.exists():
        raise LipError(f"cannot read {path}: no such file (check the path)")
    if path.is_dir():
        raise LipError(f"cannot read {path}: it is a folder (give an image file)")
    try:
        if path.stat().st_size == 0:
            raise LipError(f"cannot read {path}: the file is empty (0 bytes; re-export or re-download it)")
    except OSError as exc:
        raise LipError(f"cannot read {path}: {exc.strerror or _one_line(exc)} (check permissions)") from None

    saved_limit = PILImage.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            if check_size is not None:
                PILImage.MAX_IMAGE_PIXELS = None
            with PILImage.open(path) as im:
                if check_size is not None:
                    check_size(*im.size)
                im.load()
                rotated = ImageOps.exif_transpose(im)
                # exif_transpose returns a new image; make sure nothing still refers to the file.
                return rotated if rotated is not im else im.copy()
    except LipError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise LipError(f"cannot read {path}: too many pixels to decode safely ({_one_line(exc)}); "
                       "resize or crop it first") from None
    except UnidentifiedImageError:
        raise LipError(f"cannot read {path}: not an image file Pillow recognises "
                       "(use PNG, JPEG, TIFF or BMP)") from None
    except PermissionError:
        raise LipError(f"cannot read {path}: permission denied (check the file's permissions)") from None
    except _DECODE_ERRORS as exc:
        raise LipError(f"cannot read {path}: the file is truncated or corrupt ({_one_line(exc)}); "
                       "re-export or re-download it") from None
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved_limit


def _unit(a: np.ndarray, maxval: float) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32) / np.float32(maxval)


SAMPLE_PREFIX = "sample:"
MAX_PIXELS = 64_000_000  # the commands refuse larger inputs from the header, before decoding them


def resolve(path: Path | str, suffix: str = ".png") -> Path:
    """`sample:NAME` names a file bundled with lip (lipcli/data/NAME + suffix); other paths pass through."""
    text = str(path)
    if text.startswith(SAMPLE_PREFIX):
        return Path(__file__).parent / "data" / f"{text[len(SAMPLE_PREFIX):]}{suffix}"
    return Path(path)


def check_readable(paths: list[Path]) -> None:
    """Refuse a missing input or a folder before the first run, not after it."""
    for path in paths:
        if not resolve(path).is_file():
            what = "it is a folder (give an image file)" if resolve(path).is_dir() else "no such file (check the path)"
            raise LipError(f"cannot read {path}: {what}")


def load_image(path: Path | str, *, max_pixels: int | None = None,
               cost: Callable[[int, int], str] | None = None) -> Image:
    """Load any Pillow-readable image as gray or RGB (+ alpha), EXIF orientation applied.

    16-bit gray PNG/TIFF stays 16-bit (bit_depth 16); everything else is 8-bit.
    `max_pixels` refuses large files from the header, before spending memory on them;
    `cost(width, height)` may say what processing that size would need (added to the refusal).
    """
    path = resolve(path)

    def check(width: int, height: int) -> None:
        if max_pixels is not None and width * height > max_pixels:
            need = cost(width, height) if cost is not None else ""
            raise LipError(f"cannot read {path}: it is {width}x{height} = {width * height:,} pixels, "
                           f"more than the limit of {max_pixels:,}" + (f" ({need})" if need else "")
                           + "; resize or crop it first")

    im = _read(path, check if max_pixels is not None else None)
    mode = im.mode
    alpha = None
    bit_depth = 8
    if mode.startswith("I;16") or mode == "I":
        # 16-bit gray (Pillow uses "I" for some 16-bit files); clip guards 32-bit TIFFs.
        gray = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        pixels, bit_depth = _unit(gray, 65535)[None], 16
    elif mode in ("1", "L") and "transparency" in im.info or mode in ("LA", "La"):
        arr = np.asarray(im.convert("LA"))  # a gray tRNS colour becomes real alpha
        pixels, alpha = _unit(arr[..., 0], 255)[None], _unit(arr[..., 1], 255)
    elif mode in ("1", "L", "F"):
        pixels = _unit(np.asarray(im.convert("L")), 255)[None]
    else:
        has_alpha = ("A" in mode or "a" in mode or "transparency" in im.info
                     or (mode == "P" and im.palette is not None and im.palette.mode == "RGBA"))
        arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
        rgb = arr[..., :3]
        if mode == "P" and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            pixels = _unit(rgb[..., 0], 255)[None]  # gray palette: no need for three equal channels
        else:
            pixels = _unit(rgb.transpose(2, 0, 1), 255)
        if has_alpha:
            alpha = _unit(arr[..., 3], 255)
    return Image(pixels=pixels, alpha=alpha, bit_depth=bit_depth, name=path.name)


def _quantise(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0,1] -> uint8/uint16; NaN becomes 0 and out-of-range values are clipped."""
    maxval = 65535 if bit_depth == 16 else 255
    x = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.round(x * maxval).astype(np.uint16 if bit_depth == 16 else np.uint8)


def check_suffix(path: Path | str) -> str:
    """The Pillow format an output path asks for; an unknown suffix is refused (call it up front)."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LipError(f"cannot write {path}: unknown image type '{path.suffix}' (use .png, .jpg, .tif or .bmp)")
    return fmt


def save_image(path: Path | str, pixels: np.ndarray, *, alpha: np.ndarray | None = None,
               bit_depth: int = 8) -> None:
    """Write (C,H,W) float pixels in [0,1] atomically; the format comes from the suffix.

    Limits of the file formats, handled rather than refused so a long run is never lost:
    16-bit is written only for gray without alpha to PNG/TIFF (Pillow cannot write 48-bit
    RGB or 16-bit gray+alpha), otherwise 8-bit; JPEG drops alpha; BMP stores gray+alpha as RGBA.
    """
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"pixels must be shaped (C,H,W) with C 1 or 3, got {pixels.shape}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    fmt = check_suffix(path)
    if fmt == "JPEG":
        alpha = None
    if alpha is not None or fmt not in ("PNG", "TIFF") or pixels.shape[0] == 3:
        bit_depth = 8

    hwc = _quantise(pixels, bit_depth).transpose(1, 2, 0)
    if alpha is not None:
        if fmt == "BMP" and hwc.shape[2] == 1:
            hwc = np.repeat(hwc, 3, axis=2)
        hwc = np.concatenate([hwc, _quantise(alpha, 8)[..., None]], axis=2)
    arr = np.ascontiguousarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc)
    im = PILImage.fromarray(arr)  # uint8 -> L/LA/RGB/RGBA, uint16 (H,W) -> I;16
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt)


def pixel_hash(img: Image) -> str:
    """SHA-256 of the quantised pixels, so the same picture hashes the same in any file.

    Covers shape, bit depth, pixel values (HWC, uint8 or big-endian uint16) and alpha,
    never file bytes, which change with compression settings and metadata.
    """
    data = _quantise(img.pixels, img.bit_depth).transpose(1, 2, 0)
    if img.alpha is not None:
        data = np.concatenate([data, _quantise(img.alpha, img.bit_depth)[..., None]], axis=2)
    dtype = ">u2" if img.bit_depth == 16 else "u1"
    header = f"lip-pixels v1 {img.height}x{img.width}x{img.channels} bits={img.bit_depth} " \
             f"alpha={int(img.alpha is not None)}\n"
    digest = hashlib.sha256(header.encode())
    digest.update(np.ascontiguousarray(data, dtype=dtype).tobytes())
    return digest.hexdigest()


def load_binary_mask(path: Path | str, height: int, width: int) -> np.ndarray:
    """Load an inpainting mask (white = kept, black = missing) as bool (H,W).

    Only pure 0/255 is accepted: gray edges from anti-aliasing or JPEG would silently
    decide which pixels are trusted, so the user is asked to threshold instead.
    """
    path = Path(path)

    def check(w: int, h: int) -> None:
        # Pixel count is rotation-independent, so this is safe before EXIF is applied.
        if w * h != width * height:
            raise LipError(f"mask {path} is {w}x{h} but the image is {width}x{height} "
                           "(make the mask the same size as the image)")

    arr = np.asarray(_read(path, check).convert("L"))
    if arr.shape != (height, width):
        raise LipError(f"mask {path} is {arr.shape[1]}x{arr.shape[0]} but the image is {width}x{height} "
                       "(make the mask the same size as the image)")
    values = np.unique(arr)
    other = values[(values != 0) & (values != 255)]
    if other.size:
        raise LipError(f"mask {path} is not black-and-white: it has {other.size} gray values besides 0 and 255 "
                       "(threshold it, e.g. values >= 128 become white, and save as PNG)")
    return arr == 255


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
