"""Tests for lipcli.images: modes, bit depths, EXIF, hashing, masks and one-line errors."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageFile

from lipcli.errors import LipError
from lipcli.images import (UINT8, UINT16, Image, as_channels, from_tensor, load_binary_mask, load_image, pixel_hash,
                           save_image, to_tensor)

RNG = np.random.default_rng(0)


def rand_u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def lip_error(fn, *args, **kwargs) -> str:
    """Call fn, require a LipError with a one-line message, return the message."""
    with pytest.raises(LipError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def read_back(path: Path) -> tuple[str, np.ndarray]:
    """Mode and pixels of a written file, read with Pillow directly (file closed)."""
    with PILImage.open(path) as im:
        return im.mode, np.asarray(im)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_bilevel_png(path: Path, width: int, height: int) -> None:
    """A valid all-black 1-bit PNG written by hand: cheap on disk and in memory."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
                     + png_chunk(b"IEND", b""))


# ---- modes and round trips -------------------------------------------------------------

def test_rgb_round_trip_exact(tmp_path: Path) -> None:
    arr = rand_u8(7, 5, 3)
    PILImage.fromarray(arr).save(tmp_path / "in.png")
    img = load_image(tmp_path / "in.png")
    assert (img.channels, img.height, img.width, img.bit_depth, img.alpha) == (3, 7, 5, 8, None)
    assert img.name == "in.png" and img.pixels.dtype == np.float32
    np.testing.assert_array_equal(np.round(img.pixels * 255).astype(np.uint8), arr.transpose(2, 0, 1))

    save_image(tmp_path / "out.png", img.pixels)
    again = load_image(tmp_path / "out.png")
    np.testing.assert_array_equal(read_back(tmp_path / "out.png")[1], arr)
    assert pixel_hash(again) == pixel_hash(img)


def test_gray_l_round_trip(tmp_path: Path) -> None:
    arr = rand_u8(4, 6)
    PILImage.fromarray(arr).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert (img.channels, img.bit_depth, img.alpha) == (1, 8, None)
    save_image(tmp_path / "o.png", img.pixels)
    mode, out = read_back(tmp_path / "o.png")
    assert mode == "L"
    np.testing.assert_array_equal(out, arr)


def test_bilevel_mode_1_is_gray(tmp_path: Path) -> None:
    PILImage.fromarray(rand_u8(4, 4) > 127).save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    assert img.channels == 1 and set(np.unique(img.pixels)) <= {0.0, 1.0}


def test_gray_16bit_round_trip_exact(tmp_path: Path) -> None:
    arr = RNG.integers(0, 65536, size=(5, 4), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 0, 65535
    PILImage.fromarray(arr).save(tmp_path / "g16.png")
    img = load_image(tmp_path / "g16.png")
    assert (img.channels, img.bit_depth) == (1, 16)
    np.testing.assert_array_equal(np.round(img.pixels[0] * 65535).astype(np.uint16), arr)

    save_image(tmp_path / "o16.png", img.pixels, stored=img.stored)
    mode, out = read_back(tmp_path / "o16.png")
    assert mode.startswith("I")
    np.testing.assert_array_equal(out.astype(np.uint16), arr)
    assert pixel_hash(load_image(tmp_path / "o16.png")) == pixel_hash(img)


def test_rgba_keeps_alpha(tmp_path: Path) -> None:
    arr = rand_u8(3, 4, 4)
    PILImage.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.channels == 3 and img.alpha is not None and img.alpha.shape == (3, 4)
    np.testing.assert_array_equal(np.round(img.alpha * 255).astype(np.uint8), arr[..., 3])

    save_image(tmp_path / "o.png", img.pixels, alpha=img.alpha)
    mode, out = read_back(tmp_path / "o.png")
    assert mode == "RGBA"
    np.testing.assert_array_equal(out, arr)


def test_la_gray_with_alpha(tmp_path: Path) -> None:
    arr = rand_u8(3, 5, 2)
    PILImage.fromarray(arr).save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.channels == 1 and img.alpha is not None
    np.testing.assert_array_equal(np.round(img.alpha * 255).astype(np.uint8), arr[..., 1])
    save_image(tmp_path / "o.png", img.pixels, alpha=img.alpha)
    mode, out = read_back(tmp_path / "o.png")
    assert mode == "LA"
    np.testing.assert_array_equal(out, arr)


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = PILImage.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.putdata([0, 1, 2, 0, 1, 2, 0, 1])
    im.save(tmp_path / "p.png", transparency=1)
    img = load_image(tmp_path / "p.png")
    assert img.channels == 3 and img.alpha is not None
    np.testing.assert_array_equal(img.alpha, [[1, 0, 1, 1], [0, 1, 1, 0]])
    np.testing.assert_array_equal(img.pixels[:, 0, 0], [1, 0, 0])
    np.testing.assert_array_equal(img.pixels[:, 0, 2], [0, 0, 1])


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    PILImage.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = load_image(tmp_path / "c.jpg")
    assert (img.channels, img.alpha) == (3, None)


def test_a_cielab_tiff_is_refused_not_read_as_rgb_with_alpha(tmp_path: Path) -> None:
    """'LAB' holds an 'A' but has no alpha band, and Pillow's convert("RGB") only relabels its bands."""
    PILImage.new("RGB", (3, 2), (200, 30, 30)).convert("LAB").save(tmp_path / "lab.tif")
    with pytest.raises(LipError, match="lab.tif is a CIELAB image; .* convert it to RGB first"):
        load_image(tmp_path / "lab.tif")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_applied(tmp_path: Path, suffix: str) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40
    arr[:10, :10] = 255  # mark the top-left corner
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    im.save(tmp_path / f"r{suffix}", exif=exif)
    img = load_image(tmp_path / f"r{suffix}")
    assert (img.height, img.width) == (40, 20)
    assert img.pixels[:, 2, -3].mean() > 0.9  # top-left went to top-right
    assert img.pixels[:, -3, 2].mean() < 0.1


# ---- hashing ----------------------------------------------------------------------------

def test_pixel_hash_ignores_encoding_but_not_pixels(tmp_path: Path) -> None:
    arr = rand_u8(16, 16, 3)
    PILImage.fromarray(arr).save(tmp_path / "fast.png", compress_level=0)
    PILImage.fromarray(arr).save(tmp_path / "small.png", compress_level=9)
    assert (tmp_path / "fast.png").read_bytes() != (tmp_path / "small.png").read_bytes()
    h = pixel_hash(load_image(tmp_path / "fast.png"))
    assert h == pixel_hash(load_image(tmp_path / "small.png"))
    assert len(h) == 64 and int(h, 16) >= 0

    other = arr.copy()
    other[0, 0, 0] ^= 1
    PILImage.fromarray(other).save(tmp_path / "other.png")
    assert pixel_hash(load_image(tmp_path / "other.png")) != h

    img = load_image(tmp_path / "fast.png")
    with_alpha = Image(img.pixels, np.ones((16, 16), np.float32), UINT8, "x.png")
    assert pixel_hash(with_alpha) != h


# ---- load errors ------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in lip_error(load_image, tmp_path / "nope.png")


def test_folder(tmp_path: Path) -> None:
    assert "folder" in lip_error(load_image, tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    assert "empty" in lip_error(load_image, tmp_path / "e.png")


def test_text_file_named_png(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("hello, not an image\nsecond line\n")
    msg = lip_error(load_image, tmp_path / "t.png")
    assert "t.png" in msg and "not an image" in msg


def test_truncated_png(tmp_path: Path) -> None:
    PILImage.fromarray(rand_u8(64, 64, 3)).save(tmp_path / "full.png", compress_level=0)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    msg = lip_error(load_image, tmp_path / "cut.png")
    assert "cut.png" in msg and "truncated or corrupt" in msg


def test_too_many_pixels_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    huge_bilevel_png(tmp_path / "huge.png", 10000, 10000)

    def no_decoding(self):  # any decode attempt fails the test
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    msg = lip_error(load_image, tmp_path / "huge.png", max_pixels=4_000_000)
    assert "10000x10000" in msg and "resize or crop" in msg


def test_pillow_decompression_bomb_becomes_lip_error(tmp_path: Path, monkeypatch) -> None:
    PILImage.fromarray(rand_u8(10, 10)).save(tmp_path / "b.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 10)
    assert "resize or crop" in lip_error(load_image, tmp_path / "b.png")
    assert PILImage.MAX_IMAGE_PIXELS == 10  # our own limit did not leave Pillow's changed
    assert load_image(tmp_path / "b.png", max_pixels=100).width == 10
    assert PILImage.MAX_IMAGE_PIXELS == 10


# ---- masks ------------------------------------------------------------------------------

def test_mask_ok(tmp_path: Path) -> None:
    arr = np.where(rand_u8(6, 8) > 127, 255, 0).astype(np.uint8)
    PILImage.fromarray(np.stack([arr] * 3, axis=2)).save(tmp_path / "m.png")  # RGB mask is fine
    mask = load_binary_mask(tmp_path / "m.png", 6, 8)
    assert mask.dtype == bool and mask.shape == (6, 8)
    np.testing.assert_array_equal(mask, arr == 255)


def test_mask_wrong_size(tmp_path: Path) -> None:
    PILImage.new("L", (8, 6), 255).save(tmp_path / "m.png")
    msg = lip_error(load_binary_mask, tmp_path / "m.png", 6, 9)
    assert "8x6" in msg and "9x6" in msg
    msg = lip_error(load_binary_mask, tmp_path / "m.png", 8, 6)  # transposed: same pixel count
    assert "8x6" in msg and "6x8" in msg


def test_a_masks_transparent_pixels_are_missing_and_an_all_white_mask_is_refused(tmp_path: Path) -> None:
    """Holes erased to transparency in an image editor were read as kept (the alpha was dropped), so nothing was
    inpainted; an all-white mask, which leaves nothing to inpaint, is refused as an all-black one is."""
    rgba = np.full((6, 8, 4), 255, np.uint8)
    rgba[1:3, 2:5, 3] = 0  # transparent (white underneath)
    rgba[4, 0, :3] = 0  # opaque black
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    expected = np.ones((6, 8), bool)
    expected[1:3, 2:5] = expected[4, 0] = False
    np.testing.assert_array_equal(load_binary_mask(tmp_path / "a.png", 6, 8), expected)
    rgba[0, 0, 3] = 128
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "p.png")
    assert "partly transparent" in lip_error(load_binary_mask, tmp_path / "p.png", 6, 8)
    PILImage.new("L", (8, 6), 255).save(tmp_path / "w.png")
    assert "observes every pixel" in lip_error(load_binary_mask, tmp_path / "w.png", 6, 8)


def test_mask_not_binary(tmp_path: Path) -> None:
    arr = np.full((4, 4), 255, np.uint8)
    arr[0, :3] = [0, 100, 128]
    PILImage.fromarray(arr).save(tmp_path / "m.png")
    msg = lip_error(load_binary_mask, tmp_path / "m.png", 4, 4)
    assert "2 gray values" in msg and "threshold" in msg


def test_mask_load_errors(tmp_path: Path) -> None:
    assert "no such file" in lip_error(load_binary_mask, tmp_path / "none.png", 4, 4)


# ---- saving -----------------------------------------------------------------------------

def test_save_into_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.png"
    assert "does not exist" in lip_error(save_image, target, np.zeros((3, 4, 4), np.float32))
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    pixels = RNG.random((3, 5, 5), dtype=np.float32)
    for name in ("a.png", "b.jpg", "c.tif", "d.bmp", "e.png"):
        save_image(tmp_path / name, pixels, alpha=np.ones((5, 5), np.float32), stored=UINT16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg", "c.tif", "d.bmp", "e.png"]
    assert read_back(tmp_path / "b.jpg")[0] == "RGB"  # JPEG cannot store alpha


def test_lossy_formats_are_written_near_losslessly(tmp_path: Path) -> None:
    """A restored image keeps what the fit gained: WebP lossless (gray and alpha as RGBA), JPEG at quality 95."""
    x = np.linspace(0, 1, 3 * 32 * 32, dtype=np.float32).reshape(3, 32, 32) ** 2
    save_image(tmp_path / "o.webp", x[:1], alpha=x[0])
    mode, back = read_back(tmp_path / "o.webp")
    assert mode == "RGBA" and np.array_equal(back[..., 0], np.round(x[0] * 255))
    assert np.array_equal(back[..., 0], back[..., 3])
    save_image(tmp_path / "o.jpg", x)
    err = read_back(tmp_path / "o.jpg")[1] / 255.0 - x.transpose(1, 2, 0)
    assert 10 * np.log10(1 / np.mean(err ** 2)) > 40


def test_save_unknown_suffix(tmp_path: Path) -> None:
    assert ".xyz" in lip_error(save_image, tmp_path / "o.xyz", np.zeros((1, 2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_save_clips_and_rounds(tmp_path: Path) -> None:
    pixels = np.array([[[-0.5, 0.4 / 255, 1.6 / 255, 2.0]]], np.float32)
    save_image(tmp_path / "c.png", pixels)
    np.testing.assert_array_equal(read_back(tmp_path / "c.png")[1], [[0, 0, 2, 255]])


def test_tensor_helpers() -> None:
    img = Image(RNG.random((3, 4, 5), dtype=np.float32), None, UINT8, "x.png")
    t = to_tensor(img)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    t += 1  # a copy: the Image is untouched
    back = from_tensor(t - 1)
    assert back.shape == (3, 4, 5) and back.dtype == np.float32
    np.testing.assert_allclose(back, img.pixels, atol=1e-6)


def test_as_channels_replicates_gray_and_averages_three() -> None:
    """A gray image is fitted by three channels (a fresh copy in each) and three channels stand for it by
    their mean; any other pair of counts is left for the caller to refuse."""
    gray = torch.rand(1, 1, 4, 5, generator=torch.Generator().manual_seed(0))
    kept = gray.clone()
    rgb = as_channels(gray, 3)
    assert rgb.shape == (1, 3, 4, 5) and rgb.is_contiguous() and torch.equal(rgb[:, 2:], gray)
    rgb[:, 0] += 1
    assert torch.equal(gray, kept) and torch.equal(rgb[:, 1:2], kept)  # a fresh tensor: the gray image is untouched
    assert torch.equal(as_channels(rgb, 1), rgb.mean(dim=1, keepdim=True))
    assert as_channels(gray, 1) is gray and as_channels(rgb, 3) is rgb
    two = torch.zeros(2, 4, 5)
    assert as_channels(two, 1) is two and as_channels(two, 3) is two
