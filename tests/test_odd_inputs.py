"""Odd inputs that used to fail (issue 15, item 6): a simulated restore of an image smaller than SSIM's
window, a 28x28 digit for the 32x32 MNIST generator, and --shared-input over images of two sizes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import api, images
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.metrics import psnr

from prune_helpers import NARROW_YAML, picture, write_picture

RUN = ["--device", "cpu", "--threads", "1"]


def lip(folder: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    (folder / "narrow.yaml").write_text(NARROW_YAML)
    monkeypatch.chdir(folder)
    return CliRunner().invoke(app, [*args, *RUN])


@pytest.mark.parametrize("h, w, defined", [(7, 9, False), (11, 11, True)])
def test_simulated_restore_of_a_tiny_image_reports_ssim_as_not_defined(tmp_path, monkeypatch, h, w, defined):
    images.save_image(tmp_path / "tiny.png", picture(32, 32)[:, :h, :w])
    result = lip(tmp_path, monkeypatch, "restore", "tiny.png", "--simulate", "--config", "narrow.yaml",
                 "--iters", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["psnr_final"] is not None
    assert (report["ssim_final"] is not None) == defined and (report["ssim_stopped"] is not None) == defined
    assert ("ssim_note" in report) == (not defined)
    if not defined:
        assert f"image of {w}x{h} pixels" in report["ssim_note"] and "11x11" in report["ssim_note"]


def test_cs_pads_a_28x28_digit_and_crops_the_result_back(tmp_path, monkeypatch):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    PILImage.fromarray(digit).save(tmp_path / "digit.png")
    result = lip(tmp_path, monkeypatch, "cs", "digit.png", "--simulate", "--iters", "5", "--restarts", "1",
                 "-o", "rec.png", "--json")
    assert result.exit_code == 0, result.output
    assert "zero-padded to the generator's 32x32" in result.stderr
    assert "recovered in gray" not in result.stderr  # a gray digit for the gray generator
    PILImage.fromarray(np.stack([digit] * 3, axis=-1)).save(tmp_path / "rgb.png")
    coloured = lip(tmp_path, monkeypatch, "cs", "rgb.png", "--simulate", "--iters", "2", "--restarts", "1",
                   "-o", "rgb_rec.png")
    assert "rgb.png: a colour image, recovered in gray (the generator makes gray images)" in coloured.stderr
    report = json.loads(result.stdout)
    assert report["padded"] == "28x28 -> 32x32"
    rec = images.load_image(tmp_path / "rec.png")
    assert (rec.height, rec.width, rec.channels) == (28, 28, 1)
    # scored on the crop: the reported MSE is the written 28x28 image's (up to 8-bit rounding)
    mse = float(np.mean((rec.pixels[0].astype(np.float64) - digit / 255.0) ** 2))
    assert report["mse"] == pytest.approx(mse, abs=2e-4)


def test_cs_inpaints_a_28x28_digit_with_a_mask_of_its_own_size(tmp_path, monkeypatch):
    """The mask was read at the padded 32x32 and a 28x28 one refused ("the image is 32x32"); it is read at the
    digit's size and the padding, zeros the generator was trained with, counts as observed."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    PILImage.fromarray(digit).save(tmp_path / "digit.png")
    keep = np.full((28, 28), 255, np.uint8)
    keep[5:15, 5:15] = 0
    PILImage.fromarray(keep).save(tmp_path / "holes.png")
    result = lip(tmp_path, monkeypatch, "cs", "digit.png", "--task", "inpaint", "--inpaint-mask", "holes.png",
                 "--iters", "3", "--restarts", "1", "-o", "rec.png", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["operator"]["observed"] == pytest.approx(1 - 100 / 32 ** 2, abs=1e-6)
    rec = images.load_image(tmp_path / "rec.png")
    assert (rec.height, rec.width) == (28, 28)


def test_cs_still_refuses_an_image_larger_than_the_generator(tmp_path, monkeypatch):
    write_picture(tmp_path / "big.png", 40, 40)
    result = lip(tmp_path, monkeypatch, "cs", "big.png", "--simulate", "--iters", "1", "--restarts", "1")
    assert result.exit_code == 2 and "generator makes 32x32" in result.stderr


def test_shared_input_over_two_sizes_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    pics = [picture(32, 32, seed=0).transpose(1, 2, 0), picture(32, 48, seed=1).transpose(1, 2, 0)]
    with pytest.raises(LipError) as info:
        api.pruner(pics, simulate=True, shared_input=True, config=str(tmp_path / "narrow.yaml"), device="cpu")
    assert "32x32 and 48x32" in str(info.value) and "crop them to one size" in str(info.value)


@pytest.mark.parametrize("task", ["denoise", "sr"])
def test_a_gray_restore_is_scored_as_the_gray_image_it_writes(tmp_path, monkeypatch, task):
    """A gray image is fitted as three equal channels and written as their mean: the reported PSNR and SSIM
    are the written image's (they were the three channels', ~0.1 dB off after a short fit); SR's without the
    4-pixel border colour SR leaves out of its Y-PSNR (it was scored whole)."""
    clean = (picture(32, 32)[0] * 255).round().astype(np.uint8)
    PILImage.fromarray(clean).save(tmp_path / "gray.png")
    result = lip(tmp_path, monkeypatch, "restore", "gray.png", "--simulate", "--task", task, "--config", "narrow.yaml",
                 "--iters", "15", "--json", "-o", "out.png")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    out = np.asarray(PILImage.open(tmp_path / "out.png"), np.float64) / 255
    assert out.ndim == 2
    inner = (slice(4, -4),) * 2 if task == "sr" else (slice(None),) * 2
    want = psnr(torch.from_numpy(out[inner])[None, None], torch.from_numpy(clean[inner] / 255.0)[None, None])
    assert report["psnr_final"] == pytest.approx(want, abs=0.01)  # up to the 8-bit rounding of the file


def test_with_the_stop_off_the_report_says_no_automatic_stop(tmp_path, monkeypatch):
    """--no-early-stop: the rule still picks an iterate (psnr_stopped), but it did not end the fit."""
    images.save_image(tmp_path / "img.png", picture(32, 32))
    result = lip(tmp_path, monkeypatch, "restore", "img.png", "--simulate", "--config", "narrow.yaml", "--iters", "60",
                 "--no-early-stop", "--es-window", "5", "--es-patience", "5", "--es-gate", "0", "--ema", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["iterations"] == 60 and report["stopped_at"] < 60 and report["auto_stopped"] is False


def test_colour_sr_of_an_image_too_small_for_the_scoring_border_is_scored_whole(tmp_path, monkeypatch):
    """An 8x8 colour SR result failed with an internal error (Y-PSNR crops 4 pixels per side)."""
    images.save_image(tmp_path / "rgb8.png", picture(32, 32)[:, 12:20, 12:20])
    result = lip(tmp_path, monkeypatch, "restore", "rgb8.png", "--simulate", "--task", "sr", "--scale", "2",
                 "--config", "narrow.yaml", "--iters", "3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metric"] == "psnr_y" and report["psnr_final"] > 0
