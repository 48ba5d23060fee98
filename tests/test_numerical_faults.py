"""Numerical faults injected into real `lip restore` runs: a loss that turns NaN, inf or explodes.

A passing fault is rolled back and the run finishes (its recoveries are reported); a lasting one
ends the run after the allowed recoveries with exit 1, one error line, and the last good image
written, which is exactly the image an uninterrupted run of that many iterations writes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import fit as fit_mod
from lipcli.cli import app
from prune_helpers import isolated_folder

GOOD = 15  # the fault starts at the 16th loss evaluation
RUN = ["restore", "img.png", "--simulate", "--config", "narrow.yaml", "--threads", "1", "--device", "cpu",
       "--precision", "fp32", "--seed", "0"]
FAULTS = {"nan": math.nan, "inf": math.inf, "explodes": 1e6}


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    isolated_folder(tmp_path, monkeypatch)
    return tmp_path


def inject(monkeypatch, factor: float, calls: range, base: float = 1.0) -> list[int]:
    """Multiply the fitting loop's loss by `factor` on the given (0-based) loss evaluations, and every one by
    `base` (1e-4: a fit already as close as a 4x4 SR input's, ~1e-6)."""
    real, seen = fit_mod.observation_loss, []

    def faulty(*args, **kwargs):
        total, outs, parts = real(*args, **kwargs)
        scale = base * (factor if len(seen) in calls else 1.0)
        seen.append(len(seen))
        return total * scale, outs, [part * scale for part in parts]

    monkeypatch.setattr(fit_mod, "observation_loss", faulty)
    return seen


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_lasting_fault_stops_with_exit_1_and_keeps_the_last_good_image(work, monkeypatch, fault):
    with monkeypatch.context() as mp:
        inject(mp, FAULTS[fault], range(GOOD, 10 ** 6))
        result = CliRunner().invoke(app, [*RUN, "--iters", "40", "-o", "out.png"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("lip: error: ")]
    assert errors == [lines[-1]], result.stderr
    assert "diverged 6 times in a row" in errors[0] and "try a lower --lr" in errors[0]
    assert f"last good result (iteration {GOOD}) was written to out.png" in errors[0]
    assert (work / "out.png").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["img.png", "narrow.yaml", "out.png"]  # no temp file

    reference = CliRunner().invoke(app, [*RUN, "--iters", str(GOOD), "-o", "ref.png"])
    assert reference.exit_code == 0, reference.output
    assert (work / "out.png").read_bytes() == (work / "ref.png").read_bytes()
    with PILImage.open(work / "out.png") as im:
        assert (im.mode, im.size) == ("RGB", (64, 64))


def test_a_close_fit_of_a_tiny_observation_jumps_without_rollback_and_a_collapse_still_rolls_back(work, monkeypatch):
    """A few hundred observed values (a 16x16 picture, 768; a 4x4 SR input, 48) fitted close jump by more than 5 dB
    from step to step; that is no divergence (it ended 4x4 SR restores with exit 1), while on a larger observation
    the same jump is rolled back, and on a tiny one a non-finite loss is rolled back too."""
    PILImage.open(work / "img.png").crop((0, 0, 16, 16)).save(work / "tiny.png")  # 768 values
    tiny = ["restore", "tiny.png", *RUN[2:], "--iters", "30", "--json", "-o", "out.png"]
    for args, recoveries in ((tiny, 0), ([*RUN, "--iters", "30", "--json", "-o", "out.png"], 3)):
        with monkeypatch.context() as mp:
            inject(mp, 20, range(GOOD, GOOD + 3), base=1e-4)  # 13 dB jumps, over the 5 dB a rollback answers
            result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["recoveries"] == recoveries
    with monkeypatch.context() as mp:
        inject(mp, FAULTS["nan"], range(GOOD, 10 ** 6))
        result = CliRunner().invoke(app, tiny)
    assert result.exit_code == 1 and "diverged 6 times in a row" in result.stderr, result.output


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_passing_fault_is_rolled_back_and_the_run_finishes(work, monkeypatch, fault):
    with monkeypatch.context() as mp:
        seen = inject(mp, FAULTS[fault], range(GOOD, GOOD + 2))  # two bad evaluations, then fine
        result = CliRunner().invoke(app, [*RUN, "--iters", "30", "--json", "-o", "out.png"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["recoveries"] == 2 and report["iterations"] == 30
    assert len(seen) == 32  # 30 iterations plus the two that were rolled back
    assert math.isfinite(report["psnr_final"]) and (work / "out.png").is_file()


def test_a_loss_jump_in_the_first_steps_rolls_back_to_the_initial_weights(work, monkeypatch):
    """Rollback compared losses with the last snapshot, and the first was taken at iteration 10: a fit that
    collapsed in its first steps (--lr 0.5: the loss 8x up at step 2, then flat) was returned as if fine.
    The initial weights are now the first good state."""
    with monkeypatch.context() as mp:
        inject(mp, 100.0, range(3, 5))  # the 4th and 5th loss evaluations jump
        result = CliRunner().invoke(app, [*RUN, "--iters", "20", "--json", "-o", "out.png"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["recoveries"] == 2 and report["iterations"] == 20
