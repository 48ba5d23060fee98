"""16-bit colour PNG (RGB, RGBA, gray+alpha): the PNGs whose bits Pillow drops, read and written here.

Pillow decodes a 48-bit RGB or 64-bit RGBA PNG to 8 bits per channel and cannot write one, so a
16-bit scan would lose its low byte on the way through lip. This codec covers exactly those colour
types at bit depth 16 (PNG specification, ISO/IEC 15948): the chunks, zlib, the five row filters
and Adam7 interlacing. It only ever sees files Pillow has already opened and decoded once, so
`images.py` keeps every check of broken files; errors here are the same decode errors it maps.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> samples per pixel
# Adam7 passes: (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from a PNG's IHDR; None if not a PNG."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def _chunks(data: bytes) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.setdefault(kind, []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
        if kind == b"IEND":
            break
    return out


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, width: int, bpp: int) -> np.ndarray:
    """Undo the row filters of one (sub-)image: raw (height, 1 + width*bpp) -> (height, width, bpp) bytes.

    A byte depends on its reconstructed left, upper and upper-left neighbours, so whole anti-diagonals
    of pixels are reconstructed at once: height + width - 1 vectorised steps, whatever the filters.
    """
    kinds = raw[:, 0].astype(np.int64)
    if (kinds > 4).any():
        raise ValueError(f"unknown PNG filter type {int(kinds.max())}")
    filtered = raw[:, 1:].reshape(height, width, bpp).astype(np.int32)
    out = np.zeros((height + 1, width + 1, bpp), np.int32)  # a zero row above, a zero column on the left
    rows = np.arange(height)
    for d in range(height + width - 1):
        r = rows[max(0, d - width + 1):min(height, d + 1)]
        x = d - r
        a, b, c = out[r + 1, x], out[r, x + 1], out[r, x]
        pred = np.choose(kinds[r][:, None], [np.zeros_like(a), a, b, (a + b) >> 1, _paeth(a, b, c)])
        out[r + 1, x + 1] = (filtered[r, x] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def decode(data: bytes) -> np.ndarray:
    """A 16-bit PNG's samples as (H, W, C) uint16 (C = 1, 2, 3 or 4; a tRNS gray or colour key becomes alpha)."""
    width, height, depth, colour, interlace = header(data) or (0, 0, 0, 0, 0)
    if depth != 16 or colour not in COLOUR_CHANNELS:
        raise ValueError("not a 16-bit gray, gray+alpha, RGB or RGBA PNG")
    channels = COLOUR_CHANNELS[colour]
    bpp = 2 * channels
    chunks = _chunks(data)
    raw = np.frombuffer(zlib.decompress(b"".join(chunks.get(b"IDAT", []))), np.uint8)
    out = np.zeros((height, width, bpp), np.uint8)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    pos = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w <= 0 or h <= 0:
            continue
        size = h * (1 + w * bpp)
        if pos + size > raw.size:
            raise ValueError("the image data is shorter than the header says")
        out[y0::dy, x0::dx] = _unfilter(raw[pos:pos + size].reshape(h, 1 + w * bpp), h, w, bpp)
        pos += size
    samples = out.view(">u2").reshape(height, width, channels).astype(np.uint16)
    trns = chunks.get(b"tRNS")
    if trns and len(trns[0]) == 2 * channels and colour in (0, 2):  # one gray or RGB value marked transparent
        key = np.frombuffer(trns[0], ">u2")
        alpha = np.where((samples == key).all(axis=2), 0, 65535).astype(np.uint16)
        samples = np.concatenate([samples, alpha[..., None]], axis=2)
    return samples


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode(samples: np.ndarray, icc: bytes | None = None) -> bytes:
    """(H, W, C) uint16 samples, C = 1..4 (gray, gray+alpha, RGB, RGBA), as a 16-bit PNG; `icc`, an ICC colour
    profile, goes into an iCCP chunk (before the image data, as the format asks).

    Each row gets the filter whose output has the smallest sum of absolute signed bytes (the usual
    heuristic: it compresses best); filtering reads only original bytes, so it is vectorised.
    """
    height, width, channels = samples.shape
    colour = {v: k for k, v in COLOUR_CHANNELS.items()}[channels]
    bpp = 2 * channels
    x = np.ascontiguousarray(samples, ">u2").view(np.uint8).reshape(height, width * bpp).astype(np.int32)
    a = np.pad(x, ((0, 0), (bpp, 0)))[:, :-bpp]  # left neighbour (0 before the first pixel)
    b = np.pad(x, ((1, 0), (0, 0)))[:-1]  # byte above (0 on the first row)
    c = np.pad(b, ((0, 0), (bpp, 0)))[:, :-bpp]
    candidates = np.stack([x, x - a, x - b, x - ((a + b) >> 1), x - _paeth(a, b, c)]) & 0xFF  # (5, H, N)
    cost = np.abs(candidates.astype(np.uint8).view(np.int8).astype(np.int32)).sum(axis=2)  # (5, H)
    best = cost.argmin(axis=0)
    rows = np.concatenate([best[:, None], candidates[best, np.arange(height)]], axis=1).astype(np.uint8)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    iccp = b"" if icc is None else _chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))  # name, method 0
    return (SIGNATURE + _chunk(b"IHDR", ihdr) + iccp + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + _chunk(b"IEND", b""))
