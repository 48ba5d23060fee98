"""The image formats Pillow would narrow or refuse, as raw sample arrays: .npy and deep TIFFs.

`images.py` turns these arrays into Images (and back) and keeps every other format; this module only
reads and writes samples, checks sizes from headers and turns broken files into one-line LipErrors.
- .npy: numpy's own format, read with allow_pickle=False (a pickle is refused, never opened).
- TIFF with more than 8 bits per gray or RGB sample (16-bit, 32-bit, float): tifffile, since Pillow
  reads 16-bit RGB as 8-bit and cannot open float RGB or gray+alpha. tifffile is a dependency, not an
  extra: a pure-Python wheel of 244 kB (numpy is its only requirement) beside Pillow's 7 MB and
  torch's hundreds of MB, and microscopy and astronomy data mostly come as 16-bit or float TIFFs.
- binary PGM/PPM with more than 8 bits (dcraw -4 and astronomy tools write them): Pillow reads 16-bit colour
  as 8-bit; the format is a text header and big-endian samples, read here.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from .errors import LipError
from .files import atomic_path

TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
NPY_MAGIC = b"\x93NUMPY"
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # a pickle (protocol 2+), or a zip archive (torch.save, np.savez)
SizeCheck = Callable[[int, int], None] | None  # (width, height) -> raises LipError to refuse
T = TypeVar("T")


def _quiet(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` with tifffile's logger off: it logs what it finds wrong with a file to stderr, and lip says it once,
    in its own one-line error. Only around lip's own calls: a program that imports lip keeps tifffile's warnings."""
    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> T:
        log = logging.getLogger("tifffile")
        before, log.disabled = log.disabled, True
        try:
            return fn(*args, **kwargs)
        finally:
            log.disabled = before
    return quiet


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_file(path: Path, what: str = "an image file") -> None:
    """Refuse a missing, folder, pipe or empty input with a hint, before any decoder sees it."""
    if not path.is_file():
        raise LipError(f"cannot read {path}: {not_a_file(path, what)}")
    try:
        if path.stat().st_size == 0:
            raise LipError(f"cannot read {path}: the file is empty (0 bytes; re-export or re-download it)")
    except OSError as exc:
        raise LipError(f"cannot read {path}: {exc.strerror or one_line(exc)} (check permissions)") from None


def not_a_file(path: Path, what: str = "an image file") -> str:
    """Why `path`, which is not a regular file, cannot be read (decoders seek, and lip reads an input more than
    once: a pipe would give its bytes to the first reader only)."""
    if path.is_dir():
        return f"it is a folder (give {what})"
    if path.exists():
        return "it is a pipe or device, not a file (save what it gives to a file first)"
    if str(path) == "-":
        return "lip does not read stdin (save it to a file first)"
    return "no such file (check the path)"


def corrupt(path: Path, exc: BaseException) -> LipError:
    return LipError(f"cannot read {path}: the file is truncated or corrupt ({one_line(exc)}); "
                    "re-export or re-download it")


# EXIF/TIFF orientation -> the numpy view that shows the picture upright (as Pillow's exif_transpose).
ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1)}


def upright(a: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(ORIENT.get(orientation, lambda x: x)(a))


IMAGE_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", **dict.fromkeys(TIFF_MAGIC, "a TIFF image")}


def read_npy(path: Path, check_size: SizeCheck) -> np.ndarray:
    """A .npy array, its shape checked from the header before the data is read; never unpickled."""
    check_file(path)
    with open(path, "rb") as f:
        head = f.read(8)
    kind = next((what for magic, what in IMAGE_MAGIC.items() if head.startswith(magic)), None)
    if kind is not None or not head.startswith((NPY_MAGIC, *PICKLE_MAGIC)):  # np.load would say "a pickle"
        misnamed = kind is not None and path.suffix.lower() == ".npy"  # an image under a .npy name
        raise LipError(f"cannot read {path}: not a .npy array file" + (
            f"; it is {kind}: give it its own suffix" if misnamed else
            f"; it is {kind}, and here lip reads an array (save one with numpy.save)" if kind else
            " (save it with numpy.save)"))
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc) or "Python objects" in str(exc):
            raise LipError(f"cannot read {path}: it holds pickled Python objects, and lip never unpickles; "
                           "save a numeric array (np.save(path, a.astype(np.float32)))") from None
        raise corrupt(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - a damaged header fails in many ways (OSError, SyntaxError, ...)
        raise corrupt(path, exc) from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise LipError(f"cannot read {path}: it is an .npz archive; save one image with np.save")
    if check_size is not None and arr.ndim in (2, 3):
        check_size(arr.shape[1], arr.shape[0])
    return np.array(arr)


# TIFF's own tag values (PhotometricInterpretation, tag 262; ExtraSamples, tag 338), compared as numbers: the
# oldest tifffile lip takes (2022.5.4) names them only `tifffile.TIFF.PHOTOMETRIC`, today's only `tifffile.PHOTOMETRIC`.
_MINISWHITE, _MINISBLACK, _RGB = 0, 1, 2
_UNSPECIFIED, _ASSOCALPHA = 0, 1


@_quiet
def read_tiff(path: Path, check_size: SizeCheck) -> tuple[np.ndarray, bytes | None] | None:
    """A TIFF with more than 8 bits per gray or RGB sample (16-bit, 32-bit, float) or signed 8-bit samples as
    (H,W[,S]), upright, 0 = black, and its ICC colour profile (None: none); None leaves the file to Pillow
    (unsigned 8-bit, palette, CMYK, YCbCr, ...). A stack is refused."""
    import tifffile  # here, not at the top: ~90 ms of every restore's start-up, for TIFF inputs only
    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # not parseable as TIFF here: Pillow says what is wrong with it
        return None
    with tif:
        if not tif.series:  # no readable page: its offset points nowhere (a truncated file)
            raise corrupt(path, ValueError("no image page"))
        series = tif.series[0]
        pages = sum(s.shape == series.shape for s in tif.series)  # a smaller thumbnail page does not count
        if pages > 1:
            raise LipError(f"cannot read {path}: it holds {pages} images (pages); lip restores one: save the one "
                           "you want as its own file")
        page = series.keyframe
        kept = [(a, n) for a, n in zip(series.axes, series.shape) if n > 1 or a in "YX"]  # (1, H, W) is one plane
        axes = "".join(a for a, _ in kept)
        if axes not in ("YX", "YXS", "SYX"):  # asked before Pillow gets a file: it would read the first plane
            raise LipError(f"cannot read {path}: it is a stack of shape {series.shape} (axes {axes}); "
                           "lip restores one 2-D gray or colour image: save one plane as its own file")
        unnamed = sum(int(e) == _UNSPECIFIED for e in page.extrasamples or ())
        if unnamed:  # Pillow drops such a channel, and read as alpha it would be passed through unrestored
            raise LipError(f"cannot read {path}: {unnamed} of its {page.samplesperpixel} channels "
                           f"{'is an extra channel' if unnamed == 1 else 'are extra channels'} that the file does "
                           "not call alpha; lip restores gray or RGB images (with alpha): save each channel as its "
                           "own gray image, or mark the extra channel as alpha")
        white = page.photometric == _MINISWHITE
        premultiplied = [int(e) for e in page.extrasamples or ()] == [_ASSOCALPHA]
        if page.photometric not in (_MINISBLACK, _RGB) and not white \
                or page.dtype is None or page.dtype.itemsize == 1 and page.dtype.kind != "i":
            return None
        shape = dict(kept)
        if check_size is not None:
            check_size(shape["X"], shape["Y"])
        try:
            arr = series.asarray().reshape([shape[a] for a in axes])
        except Exception as exc:  # noqa: BLE001 - any decoder failure of a damaged file
            if "imagecodecs" not in str(exc):
                raise corrupt(path, exc) from None
            if axes == "YX" and page.dtype.name in ("uint16", "float32") and page.predictor != 3:
                return None  # Pillow decodes these (LZW gray 16-bit and float) without narrowing them
            raise LipError(f"cannot read {path}: its {page.compression.name} compression needs the imagecodecs "
                           "package (pip install imagecodecs), or save it uncompressed or with deflate") from None
        tag = page.tags.get(274)  # Orientation
        orientation = int(tag.value) if tag is not None else 1
        icc = page.tags.get(34675)  # InterColorProfile
        icc = bytes(icc.value) if icc is not None else None
    if white:  # 0 is white; written back with 0 = black (write_tiff), so turn the values over, keeping their range
        arr = np.iinfo(arr.dtype).max - arr if arr.dtype.kind == "u" else ~arr if arr.dtype.kind == "i" \
            else arr.max() + arr.min() - arr
    arr = np.moveaxis(arr, 0, -1) if axes == "SYX" else arr
    return upright(_unpremultiplied(arr) if premultiplied else arr, orientation), icc


def _unpremultiplied(hwc: np.ndarray) -> np.ndarray:
    """Straight colour from associated (premultiplied) alpha, the last channel, as Pillow gives 8-bit files: lip
    writes unassociated alpha, so colour kept premultiplied would come back darkened by alpha. Where alpha is 0
    the colour is unknown and stays 0."""
    x = hwc.astype(np.float64)
    full = float(np.iinfo(hwc.dtype).max) if hwc.dtype.kind in "ui" else 1.0
    alpha = x[..., -1:] / full
    colour = np.divide(x[..., :-1], alpha, out=np.zeros_like(x[..., :-1]), where=alpha > 0)
    if hwc.dtype.kind in "ui":
        info = np.iinfo(hwc.dtype)
        colour = np.clip(np.round(colour), info.min, info.max)
    return np.concatenate([colour, x[..., -1:]], axis=-1).astype(hwc.dtype)


NETPBM_MAGIC = (b"P5", b"P6")  # binary gray (PGM) and colour (PPM)
NETPBM_HEADER = 1 << 16  # the bytes a PGM/PPM header may take, comments included


def read_netpbm(path: Path, check_size: SizeCheck) -> np.ndarray | None:
    """A binary PGM/PPM whose maxval is above 255 as (H,W[,3]) uint16, scaled to the full 16-bit range (a
    12-bit file's 4095 becomes 65535, as PNG stores such samples); None leaves an 8-bit file to Pillow. Only
    the header is read before that choice and the size check."""
    with open(path, "rb") as f:
        head = f.read(NETPBM_HEADER)
    fields: list[bytes] = []
    pos = 2
    while len(fields) < 3:  # width, height, maxval: whitespace-separated, with # comments to the line's end
        while pos < len(head) and (head[pos:pos + 1].isspace() or head[pos:pos + 1] == b"#"):
            if head[pos:pos + 1] == b"#":  # a comment: to the end of its line
                newline = head.find(b"\n", pos)
                pos = len(head) if newline < 0 else newline + 1
            else:
                pos += 1
        end = pos
        while end < len(head) and not head[end:end + 1].isspace() and head[end:end + 1] != b"#":
            end += 1
        fields.append(head[pos:end])
        pos = end
        if pos >= len(head):
            raise corrupt(path, ValueError("the header ends early" if len(head) < NETPBM_HEADER
                                           else f"the header runs past {NETPBM_HEADER // 1024} kB"))
    if not all(f.isdigit() for f in fields):
        raise corrupt(path, ValueError(f"its header reads {b' '.join(fields)!r}"))
    width, height, maxval = map(int, fields)
    if maxval <= 255:
        return None
    if maxval > 65535 or width < 1 or height < 1:
        raise corrupt(path, ValueError(f"{width}x{height}, maxval {maxval}"))
    if check_size is not None:
        check_size(width, height)
    channels = 3 if head[:2] == b"P6" else 1
    count = width * height * channels
    with open(path, "rb") as f:
        f.seek(pos + 1)  # one whitespace byte ends the header
        data = f.read(2 * count)
    if len(data) < 2 * count:
        raise corrupt(path, ValueError(f"{len(data) // 2:,} of {count:,} samples"))
    scaled = np.round(np.frombuffer(data, ">u2").astype(np.float64) * (65535 / maxval)).astype(np.uint16)
    return scaled.reshape((height, width, channels) if channels == 3 else (height, width))


def save_npy(path: Path, arr: np.ndarray) -> None:
    """Write one array as .npy, atomically (files.py), never pickled: every .npy lip writes goes here."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)


@_quiet
def write_tiff(path: Path, hwc: np.ndarray, *, colour: bool, alpha: bool, icc: bytes | None = None) -> None:
    """(H, W, C) samples of any numeric dtype as one uncompressed TIFF page, alpha (if any) last, with the ICC
    colour profile `icc` if given (as its tag, 34675 of type UNDEFINED: tifffile 2022.5.4, the oldest lip takes, has
    no `iccprofile`)."""
    import tifffile
    tifffile.imwrite(path, hwc[..., 0] if hwc.shape[2] == 1 else hwc, photometric="rgb" if colour else "minisblack",
                     extrasamples=["unassalpha"] if alpha else None,
                     extratags=[(34675, 7, len(icc), icc, True)] if icc else None)
