"""Shared fixtures for the restore-engine tests: small images, narrow nets, a pinned thread count.

Images live in tests/data/ (small crops of the DIP test pictures, so a fresh clone needs nothing
else): a 64x64 RGB crop of `astronaut.png` and a 53x37 (W x H) gray crop of
`cameraman-gray256.png` (both from the shared DIP test images).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from lipcli import images, nets, sharing

DATA = Path(__file__).parent / "data"
RGB64 = DATA / "astronaut_64.png"
GRAY37x53 = DATA / "cameraman_53x37.png"  # 37 rows, 53 columns

# One thread: bit-reproducible results (fits are compared for exact equality) and, on a shared
# 2-core machine, far faster than two threads fighting another job for the cores.
torch.set_num_threads(1)
# Running fits register in a folder shared by the user's lip processes (lipcli/sharing.py): the suite gets its
# own, so lip jobs elsewhere on the machine do not change the tests' thread counts (subprocesses inherit it).
os.environ["LIP_SHARE_DIR"] = tempfile.mkdtemp(prefix="lip-fits-tests-")


def narrow_spec(**overrides) -> dict:
    """The DIP hourglass at 1/8 width: 5 levels (works at 64x64), ~43k parameters."""
    return nets.preset("dip", **{"down": [16] * 5, "up": [16] * 5, **overrides})


def tiny_spec(**overrides) -> dict:
    """A 3-level, 8-channel hourglass: multiple 8, minimum side 16; a few ms per iteration."""
    return nets.preset("dip", **{"down": [8] * 3, "up": [8] * 3, "skip": [4] * 3, **overrides})


@pytest.fixture(autouse=True)
def _pin_threads():
    """Keep the thread count fixed even if a test (e.g. the CLI's --threads) changes it."""
    yield
    torch.set_num_threads(1)
    sharing.set_policy(1, 1, open_count=False)  # a CLI call in-process leaves its policy behind
    sharing.unregister()


@pytest.fixture
def rgb64_path() -> Path:
    return RGB64


@pytest.fixture
def gray_path() -> Path:
    return GRAY37x53


@pytest.fixture
def rgb64() -> torch.Tensor:
    """(1,3,64,64) float32 in [0,1]."""
    return images.to_tensor(images.load_image(RGB64))


@pytest.fixture
def rgb32(rgb64) -> torch.Tensor:
    """(1,3,32,32): the centre of the 64x64 crop, for the fastest fitting tests."""
    return rgb64[..., 16:48, 16:48].contiguous()


@pytest.fixture
def gray37x53() -> torch.Tensor:
    """(1,1,37,53) float32 in [0,1]."""
    return images.to_tensor(images.load_image(GRAY37x53))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A temporary folder holding copies of the test images (outputs are written beside inputs)."""
    shutil.copy(RGB64, tmp_path / "rgb.png")
    shutil.copy(GRAY37x53, tmp_path / "gray.png")
    rgb = np.asarray(PILImage.open(RGB64))[:37, :53]  # colour, odd size
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).round().astype(np.uint8), (rgb.shape[0], 1))
    alpha[:5, :5] = 0  # fully transparent corner
    PILImage.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    return tmp_path
