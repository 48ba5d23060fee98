"""Learning-process snapshots (`lip restore --snapshots N DIR`, LIP Fig. 12) and the Watch callback behind
them and behind the SSIM curves: what it hands on is exactly what the fit showed at that iteration."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import api
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.fit import FitConfig, fit
from lipcli.watch import Watch
from conftest import RGB64, tiny_spec
from test_fit import make_run

FAST = ["--config", "fast", "--precision", "fp32", "--device", "cpu", "--prior", "deep-decoder", "--dd-k", "16"]


def lip(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def pixels(path: Path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im)


@pytest.mark.parametrize("ema", [0.9, 0.0])
def test_watch_sees_exactly_what_the_fit_showed(rgb32, ema):
    """fit() scores its shown image (the EMA, or the raw output) against `clean` at every iteration: the
    metric records it, and the watcher's image at its iterations must be bit for bit the same."""
    net, target, _ = make_run(tiny_spec(), rgb32)
    shown_by_fit: list[torch.Tensor] = []
    target = replace(target, clean=rgb32, metric=lambda shown, clean: shown_by_fit.append(shown.clone()) or 0.0)
    seen: dict[int, torch.Tensor] = {}
    watch = Watch(3, lambda it, shown: seen.__setitem__(it, shown.clone()))
    cfg = FitConfig(iters=10, ema=ema, early_stop=False)
    result = fit(net, [target], cfg, callbacks=[watch])
    assert sorted(seen) == [3, 6, 9]
    for it, image in seen.items():
        assert torch.equal(image, shown_by_fit[it - 1])
    assert not torch.equal(seen[3], seen[6])  # the fit moves
    assert torch.equal(watch.shown, result.targets[0].final)  # after the last step: the fit's final image


def test_watch_refuses_a_zero_period():
    with pytest.raises(ValueError):
        Watch(0, lambda it, shown: None)


@pytest.fixture
def img32(tmp_path) -> Path:
    path = tmp_path / "x.png"
    PILImage.fromarray(pixels(RGB64)[16:48, 16:48]).save(path)
    return path


def test_cli_snapshots_at_the_requested_iterations_equal_the_shown_image(img32, tmp_path):
    """Every 4th iteration of a 12-iteration fit, named so that they sort; the one at 8 is what an 8-iteration
    run of the same fit returns (its shown, EMA-averaged image), the one at 12 the written output."""
    snaps, out12, out8 = tmp_path / "snaps", tmp_path / "out12.png", tmp_path / "out8.png"
    base = ["restore", img32, "--simulate", "--no-early-stop", *FAST]
    r = lip(*base, "--iters", "12", "--snapshots", "4", snaps, "-o", out12)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in snaps.iterdir()) == ["x_04.png", "x_08.png", "x_12.png"]  # no temporary files
    assert lip(*base, "--iters", "8", "-o", out8).exit_code == 0
    assert np.array_equal(pixels(snaps / "x_08.png"), pixels(out8))
    assert np.array_equal(pixels(snaps / "x_12.png"), pixels(out12))
    assert not np.array_equal(pixels(snaps / "x_04.png"), pixels(out8))


def test_cli_snapshots_refused_before_any_work(img32, tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for extra, needle in ((["--snapshots", "4", a_file], "exists and is not a folder"),
                          (["--snapshots", "0", tmp_path / "s"], "at least 1"),
                          (["--snapshots", "4", tmp_path / "s", "--ensemble", "2"], "drop --ensemble")):
        r = lip("restore", img32, "--iters", "8", *FAST, "-o", tmp_path / "out.png", *extra)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "x.png"]  # no output, no folder


def test_api_hands_snapshots_in_the_input_mode(tmp_path):
    gray = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)
    got: dict[int, np.ndarray] = {}
    job = api.restorer(snapshot_every=5, iters=10, config="fast", precision="fp32", device="cpu",
                       prior="deep-decoder", dd_k=16, early_stop=False)
    out = job(gray, on_snapshot=lambda it, picture: got.__setitem__(it, api.images_io.to_array(picture)))
    assert sorted(got) == [5, 10] and got[10].shape == gray.shape and got[10].dtype == np.uint8
    assert np.array_equal(got[10], out.image)
    with pytest.raises(LipError, match="drop --ensemble"):
        api.restorer(snapshot_every=5, ensemble=2)
