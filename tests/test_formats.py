"""Scientific image formats (issue 15, item 3): .npy, TIFF (16-bit, float32) and 16-bit colour PNG keep
their dtype, value range, bit depth and layout from input to output, for gray, gray+alpha, RGB and RGBA.

16-bit PNGs are built here by a reference encoder written from the PNG specification, one byte at a
time (every filter type, Adam7 interlacing, an eXIf orientation), independent of lipcli/png16.py.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, JpegImagePlugin
from typer.testing import CliRunner

from lipcli import png16
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.images import from_array, load_image, narrowed, output_suffix, pixel_hash, save_image, to_array

from prune_helpers import NARROW_YAML

RNG = np.random.default_rng(7)
CHANNELS = {"gray": 1, "gray+alpha": 2, "RGB": 3, "RGBA": 4}


def samples(dtype: str, channels: int, h: int = 9, w: int = 7) -> np.ndarray:
    """HxW (1 channel) or HxWxC test samples covering the type's range (floats: a wide range)."""
    shape = (h, w) if channels == 1 else (h, w, channels)
    if dtype in ("uint8", "uint16"):
        a = RNG.integers(0, np.iinfo(dtype).max + 1, size=shape).astype(dtype)
        a.flat[0], a.flat[1] = 0, np.iinfo(dtype).max
        return a
    if dtype == "float32 unit":
        return RNG.random(shape, dtype=np.float32)
    if dtype == "int16":
        return RNG.integers(-1000, 3000, size=shape).astype(np.int16)
    return (RNG.random(shape) * 4000 - 500).astype(dtype)  # float32 / float64 with their own range


# ------------------------------------------------------------------ a reference 16-bit PNG encoder

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """One scanline filtered byte by byte, as the PNG specification writes it."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = b
        elif kind == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out.append((x - pred) % 256)
    return bytes(out)


def _scanlines(a: np.ndarray, first_kind: int) -> bytes:
    bpp = 2 * a.shape[2]
    rows = [a[r].astype(">u2").tobytes() for r in range(a.shape[0])]
    data, prev = b"", bytes(len(rows[0]))
    for r, row in enumerate(rows):
        kind = (first_kind + r) % 5  # every filter type, row after row
        data += bytes([kind]) + _filter_row(kind, row, prev, bpp)
        prev = row
    return data


def reference_png16(a: np.ndarray, interlace: bool = False, orientation: int | None = None,
                    extra: bytes = b"") -> bytes:
    """(H,W,C) uint16 -> PNG bytes, written without lipcli's codec; `extra`: chunks to put before the data."""
    h, w, c = a.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    if interlace:
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
        data = b"".join(_scanlines(a[y0::dy, x0::dx], i) for i, (x0, y0, dx, dy) in enumerate(passes)
                        if a[y0::dy, x0::dx].size)
    else:
        data = _scanlines(a, 0)
    exif = b""
    if orientation is not None:
        e = PILImage.Exif()
        e[0x0112] = orientation
        exif = _chunk(b"eXIf", e.tobytes()[6:])  # the TIFF structure, without "Exif\0\0"
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, int(interlace)))
            + exif + extra + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b""))


# ------------------------------------------------------------------ 16-bit PNG

@pytest.mark.parametrize("kind", list(CHANNELS))
@pytest.mark.parametrize("interlace", [False, True])
def test_16bit_png_is_read_with_all_16_bits(tmp_path: Path, kind: str, interlace: bool) -> None:
    a = samples("uint16", CHANNELS[kind], 11, 13)
    a3 = a if a.ndim == 3 else a[..., None]
    (tmp_path / "in.png").write_bytes(reference_png16(a3, interlace))
    img = load_image(tmp_path / "in.png")
    assert img.bit_depth == 16 and img.stored.dtype == "uint16"
    assert (img.channels, img.alpha is not None) == ({1: 1, 2: 1, 3: 3, 4: 3}[a3.shape[2]], a3.shape[2] in (2, 4))
    np.testing.assert_array_equal(to_array(img), a)  # every bit, alpha included


@pytest.mark.parametrize("kind", list(CHANNELS))
def test_16bit_png_round_trip_is_bit_exact(tmp_path: Path, kind: str) -> None:
    a = samples("uint16", CHANNELS[kind], 11, 13)
    img = from_array(a)
    save_image(tmp_path / "o.png", img.pixels, alpha=img.alpha, stored=img.stored)
    again = load_image(tmp_path / "o.png")
    np.testing.assert_array_equal(to_array(again), a)
    assert pixel_hash(again) == pixel_hash(img)
    with PILImage.open(tmp_path / "o.png") as im:  # Pillow decodes lip's file (to 8 bits for colour)
        im.load()
        if kind == "RGB":
            np.testing.assert_array_equal(np.asarray(im), (a >> 8).astype(np.uint8))


def test_16bit_gray_png_transparency_key_becomes_alpha(tmp_path: Path) -> None:
    a = samples("uint16", 1, 11, 13)
    key = int(a[5, 6])
    (tmp_path / "k.png").write_bytes(reference_png16(a[..., None], extra=_chunk(b"tRNS", struct.pack(">H", key))))
    img = load_image(tmp_path / "k.png")
    assert img.channels == 1 and img.alpha is not None
    np.testing.assert_array_equal(img.alpha == 0, a == key)


def test_deep_pgm_and_ppm_keep_their_bits(tmp_path: Path) -> None:
    rgb, gray = samples("uint16", 3, 5, 6), samples("uint16", 1, 5, 6)
    (tmp_path / "c.ppm").write_bytes(b"P6\n# dcraw -4\n6 5\n65535\n" + rgb.astype(">u2").tobytes())
    (tmp_path / "g.pgm").write_bytes(b"P5 6 5 65535\n" + gray.astype(">u2").tobytes())
    (tmp_path / "t.ppm").write_bytes(b"P6\n6 5\n4095\n" + (rgb >> 4).astype(">u2").tobytes())
    np.testing.assert_array_equal(to_array(load_image(tmp_path / "c.ppm")), rgb)
    np.testing.assert_array_equal(to_array(load_image(tmp_path / "g.pgm")), gray)
    twelve = load_image(tmp_path / "t.ppm")  # 12-bit samples fill the 16-bit range, as PNG stores them
    assert twelve.bit_depth == 16
    np.testing.assert_array_equal(to_array(twelve), np.round((rgb >> 4) * (65535 / 4095)).astype(np.uint16))
    (tmp_path / "cut.ppm").write_bytes((tmp_path / "c.ppm").read_bytes()[:-3])
    with pytest.raises(LipError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.ppm")


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_icc_profiles_are_kept_from_input_to_output(tmp_path: Path) -> None:
    rgb8, rgb16 = samples("uint8", 3, 12, 10), samples("uint16", 3, 12, 10)
    PILImage.fromarray(rgb8).save(tmp_path / "a.png", icc_profile=SRGB)
    PILImage.fromarray(rgb8).save(tmp_path / "a.jpg", icc_profile=SRGB)
    tifffile.imwrite(tmp_path / "a.tif", rgb16, photometric="rgb", extratags=[(34675, 7, len(SRGB), SRGB, True)])
    iccp = _chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(SRGB))
    (tmp_path / "b.png").write_bytes(reference_png16(rgb16, extra=iccp))
    for name in ("a.png", "a.jpg", "a.tif", "b.png"):
        img = load_image(tmp_path / name)
        assert img.stored.icc == SRGB, name
        for out in ("o.png", "o.jpg", "o.tif", "o.webp"):
            save_image(tmp_path / out, img.pixels, stored=img.stored)
            assert load_image(tmp_path / out).stored.icc == SRGB, (name, out)
            with PILImage.open(tmp_path / out) as im:  # other readers see it too
                assert im.info.get("icc_profile") == SRGB, (name, out)
    assert "ICC colour profile" in " ".join(narrowed("o.bmp", False, img.stored))
    # a profile the output cannot carry is said, not dropped in silence (a gray palette PNG with an RGB profile)
    assert "made for RGB images; the output is gray" in " ".join(narrowed("o.png", False, img.stored, 1))
    gray_icc = replace(img.stored, icc=SRGB[:16] + b"GRAY" + SRGB[20:])
    assert "WebP stores gray as RGB" in " ".join(narrowed("o.webp", False, gray_icc, 1))
    assert not narrowed("o.png", False, gray_icc, 1) and "ICC" not in " ".join(narrowed("o.webp", False, img.stored))
    gray = from_array(rgb8[..., 0])  # a colour profile never goes into a gray file
    save_image(tmp_path / "g.png", gray.pixels, stored=replace(gray.stored, icc=SRGB))
    assert load_image(tmp_path / "g.png").stored.icc is None


def test_jpeg_keeps_full_resolution_colour_and_says_it_is_lossy(tmp_path: Path) -> None:
    """Pillow's default 4:2:0 JPEG cost a colourful restored crop 3.2 dB against the scores lip reported."""
    rgb = np.random.default_rng(0).random((3, 32, 32))
    save_image(tmp_path / "o.jpg", rgb)
    with PILImage.open(tmp_path / "o.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
    back = load_image(tmp_path / "o.jpg").pixels
    assert 10 * np.log10(1 / np.mean((back - rgb) ** 2)) > 30  # 4:2:0 scores 12.5 dB on this noise
    assert "JPEG is lossy" in " ".join(narrowed("o.jpg", False, load_image(tmp_path / "o.jpg").stored))
    assert not narrowed("o.png", False, load_image(tmp_path / "o.jpg").stored)


def test_png16_codec_matches_the_reference_filters() -> None:
    a = samples("uint16", 3, 6, 5)
    assert np.array_equal(png16.decode(reference_png16(a, orientation=None)), a)
    assert np.array_equal(png16.decode(png16.encode(a)), a)


def test_16bit_png_exif_orientation_is_applied(tmp_path: Path) -> None:
    a = samples("uint16", 3, 5, 8)
    (tmp_path / "r.png").write_bytes(reference_png16(a, orientation=6))  # shown rotated 90 degrees clockwise
    img = load_image(tmp_path / "r.png")
    np.testing.assert_array_equal(to_array(img), np.rot90(a, -1))
    with PILImage.open(tmp_path / "r.png") as im:  # the same turn as Pillow's (on its 8-bit view)
        from PIL import ImageOps
        np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(im)), (np.rot90(a, -1) >> 8).astype(np.uint8))


# ------------------------------------------------------------------ TIFF

TIFF_TYPES = ["uint16", "float32 unit", "float32", "int16", "uint8"]


@pytest.mark.parametrize("dtype", TIFF_TYPES)
@pytest.mark.parametrize("kind", list(CHANNELS))
def test_tiff_round_trip_keeps_dtype_and_range(tmp_path: Path, dtype: str, kind: str) -> None:
    a = samples(dtype, CHANNELS[kind])
    photometric = "rgb" if CHANNELS[kind] >= 3 else "minisblack"
    extra = ["unassalpha"] if CHANNELS[kind] in (2, 4) else None
    tifffile.imwrite(tmp_path / "in.tif", a, photometric=photometric, extrasamples=extra)
    img = load_image(tmp_path / "in.tif")
    assert img.stored.dtype == a.dtype.name
    save_image(tmp_path / "out.tif", img.pixels, alpha=img.alpha, stored=img.stored)
    back = tifffile.imread(tmp_path / "out.tif")
    assert back.dtype == a.dtype and back.shape == a.shape
    if a.dtype.kind in "ui" or dtype == "float32 unit":
        np.testing.assert_array_equal(back, a)  # bit-exact
    else:
        np.testing.assert_allclose(back, a, rtol=1e-6, atol=1e-6 * float(np.ptp(a)))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_premultiplied_alpha_is_read_as_straight_colour(tmp_path: Path, dtype: str) -> None:
    """16-bit and float TIFFs with associated alpha kept their colour multiplied by alpha, and lip writes straight
    alpha: semi-transparent pixels came out darkened. 8-bit ones (Pillow's) were right; all read alike now."""
    rng = np.random.default_rng(0)
    colour, alpha = rng.random((8, 8, 3)), rng.choice([0.0, 0.25, 0.5, 1.0], (8, 8, 1))
    full = 1.0 if dtype == "float32" else np.iinfo(dtype).max
    stored = np.concatenate([colour * alpha, alpha], -1) * full
    stored = stored.astype(dtype) if dtype == "float32" else np.round(stored).astype(dtype)
    tifffile.imwrite(tmp_path / "p.tif", stored, photometric="rgb", extrasamples=["assocalpha"])
    img = load_image(tmp_path / "p.tif")
    seen = alpha[..., 0] > 0
    tol = 1e-6 if dtype == "float32" else 4.0 / full  # the rounding of a premultiplied sample, divided by alpha
    np.testing.assert_allclose(img.pixels.transpose(1, 2, 0)[seen], colour[seen], atol=tol)
    np.testing.assert_allclose(img.alpha, alpha[..., 0], atol=1e-6 if dtype == "float32" else 1 / full)


def test_a_tiff_stack_is_refused(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 8, 8), np.uint16), photometric="minisblack")
    with pytest.raises(LipError, match="stack"):
        load_image(tmp_path / "stack.tif")


# ------------------------------------------------------------------ .npy

NPY_TYPES = ["uint8", "uint16", "float32 unit", "float32", "float64", "int16"]


@pytest.mark.parametrize("dtype", NPY_TYPES)
@pytest.mark.parametrize("kind", list(CHANNELS))
def test_npy_round_trip_keeps_dtype_range_and_shape(tmp_path: Path, dtype: str, kind: str) -> None:
    a = samples(dtype, CHANNELS[kind])
    np.save(tmp_path / "in.npy", a)
    img = load_image(tmp_path / "in.npy")
    save_image(tmp_path / "out.npy", img.pixels, alpha=img.alpha, stored=img.stored)
    back = np.load(tmp_path / "out.npy")
    assert back.dtype == a.dtype and back.shape == a.shape
    if a.dtype.kind in "ui" or dtype == "float32 unit":
        np.testing.assert_array_equal(back, a)
    else:
        np.testing.assert_allclose(back, a, rtol=1e-6, atol=1e-6 * float(np.ptp(a)))


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32"])
def test_the_ends_of_a_wide_integer_type_come_back_in_range(dtype: str) -> None:
    """int64's maximum wrapped to its minimum on write (float64 rounds the maximum up to 2**63)."""
    info = np.iinfo(dtype)
    a = np.array([[info.min, info.max], [0, info.max]], dtype)
    back = to_array(from_array(a))
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)


def test_npy_value_ranges() -> None:
    assert from_array(np.zeros((4, 4), np.uint16)).stored.hi == 65535  # integer images: the type's range
    unit = from_array(np.full((4, 4), 0.5, np.float32))
    assert (unit.stored.lo, unit.stored.hi) == (0.0, 1.0) and unit.pixels.max() == 0.5
    wide = from_array(np.array([[-2.0, 6.0]], np.float64))  # a float beyond [0, 1]: its own min..max
    np.testing.assert_allclose(wide.pixels[0], [[0.0, 1.0]])
    assert from_array(np.ones((4, 4, 1), np.float32)).stored.layout == "HWC"  # HxWx1 stays 3-D


@pytest.mark.parametrize("arr, needle", [
    (np.zeros((2, 3, 4, 5), np.float32), "HxW or HxWxC"),
    (np.zeros((3, 16, 16), np.float32), "channels first"),
    (np.zeros((5,), np.float32), "HxW or HxWxC"),
    (np.array([[0.0, np.nan], [1.0, np.inf]], np.float32), "2 NaN or infinite"),
    (np.zeros((4, 4), bool), "dtype bool"),
])
def test_bad_arrays_are_refused_in_one_line(arr: np.ndarray, needle: str) -> None:
    with pytest.raises(LipError, match=needle) as info:
        from_array(arr)
    assert "\n" not in str(info.value)


def test_a_pickled_npy_is_never_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LipError, match="never unpickles"):
        load_image(tmp_path / "obj.npy")


def test_output_keeps_the_input_type() -> None:
    assert [output_suffix(p) for p in ("a.npy", "b.TIF", "c.tiff", "d.jpg", "e.png", "f.bmp")] == \
        [".npy", ".tif", ".tiff", ".png", ".png", ".png"]


# ------------------------------------------------------------------ through `lip restore`

def _restore(folder: Path, name: str, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict:
    (folder / "narrow.yaml").write_text(NARROW_YAML)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, ["restore", name, "--config", "narrow.yaml", "--device", "cpu",
                                      "--threads", "1", "--iters", "2", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64"])
def test_restore_npy_writes_npy_with_the_inputs_dtype_and_range(tmp_path, monkeypatch, dtype) -> None:
    a = samples(dtype, 3, 20, 24)
    np.save(tmp_path / "x.npy", a)
    report = _restore(tmp_path, "x.npy", monkeypatch)
    assert report["output"] == "x_restored.npy"
    out = np.load(tmp_path / "x_restored.npy")
    assert out.dtype == a.dtype and out.shape == a.shape
    assert a.min() <= out.min() and out.max() <= a.max()


def test_restore_16bit_rgb_tiff_and_png_stay_16bit(tmp_path, monkeypatch) -> None:
    a = samples("uint16", 4, 20, 24)
    tifffile.imwrite(tmp_path / "t.tif", a, photometric="rgb", extrasamples=["unassalpha"])
    (tmp_path / "p.png").write_bytes(reference_png16(a[..., :3]))
    _restore(tmp_path, "t.tif", monkeypatch)
    out = tifffile.imread(tmp_path / "t_restored.tif")
    assert out.dtype == np.uint16 and out.shape == a.shape
    np.testing.assert_array_equal(out[..., 3], a[..., 3])  # alpha passes through untouched
    _restore(tmp_path, "p.png", monkeypatch)
    back = load_image(tmp_path / "p_restored.png")
    assert back.bit_depth == 16 and back.channels == 3
    assert len(np.unique(to_array(back) & 0xFF)) > 1  # the low byte carries information


def test_restore_keeps_the_inputs_colour_profile(tmp_path, monkeypatch) -> None:
    PILImage.fromarray(samples("uint8", 3, 20, 24)).save(tmp_path / "c.jpg", icc_profile=SRGB)
    _restore(tmp_path, "c.jpg", monkeypatch)
    assert load_image(tmp_path / "c_restored.png").stored.icc == SRGB


def test_16bit_png_header_is_the_one_pillow_writes() -> None:
    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((3, 4), np.uint16)).save(buf, format="PNG")
    assert png16.header(buf.getvalue())[:4] == (4, 3, 16, 0)
