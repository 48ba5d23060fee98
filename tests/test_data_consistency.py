"""Data consistency (`--data-consistency`): what the observation holds exactly is put back into what a fit
reports (inpainting's observed pixels, MRI's sampled k-space), and nothing else changes."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lipcli import api, artifact, config, images, nets
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.fit import FitConfig, Target, fit
from lipcli.physics import TASKS, Denoise, Inpaint, fft2c, ifft2c
from conftest import tiny_spec
from test_artifact import make_artifact


def test_inpainting_keeps_the_observed_pixels_and_fills_only_the_holes():
    op = Inpaint.bernoulli((3, 16, 16), 0.5, seed=0)
    clean, guess = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    out = op.consistent(guess, op.A(clean))
    seen = op.mask.bool().expand_as(out)
    assert torch.equal(out[seen], clean[seen]) and torch.equal(out[~seen], guess[~seen])


def test_mri_puts_the_measured_kspace_back():
    """The clean image is its own consistent image; a zero guess gives the zero-filled reconstruction's real
    part; a real guess comes back closer to the measured entries, as a real non-negative image."""
    clean = images.to_tensor(images.load_image("sample:mri-brain"))[:, :, :64, :64].expand(1, 3, 64, 64)
    op = TASKS.get("mri").build(TASKS.get("mri").options, 64, 64, gray=True, inpaint_mask=None, seed=0)
    y = op.A(clean)
    op.calibrate(y)
    y_net = clean / op.scale  # the reference in the net's units, as load_problem keeps it
    assert torch.allclose(op.consistent(y_net, y), y_net, atol=1e-5)
    zero_filled = ifft2c(op._complex(y) / op.scale).real.clamp(min=0)
    assert torch.allclose(op.consistent(torch.zeros_like(clean), y)[:, 0], zero_filled, atol=1e-6)
    guess = torch.rand(1, 3, 64, 64)
    out = op.consistent(guess, y)
    assert out.shape == guess.shape and bool((out >= 0).all())
    sampled = op.mask.bool()
    k = fft2c(out.mean(dim=1))[0][sampled]
    assert (k - fft2c(y_net.mean(dim=1))[0][sampled]).abs().max() < 0.5 * fft2c(guess.mean(dim=1))[0][sampled].abs().max()


def _inpainting_run(rgb32, consistency: bool):
    torch.manual_seed(0)
    net = nets.build(tiny_spec())
    op = Inpaint.bernoulli((3, 32, 32), 0.5, seed=0)
    z = nets.make_input(net, *nets.padded_size(net, 32, 32), torch.Generator().manual_seed(0))
    target = Target(z=z, op=op, y=op.A(rgb32), size=(32, 32), clean=rgb32)
    return op, target, fit(net, [target], FitConfig(iters=25, early_stop=False, data_consistency=consistency))


def test_the_fit_is_unchanged_and_reports_the_consistent_output(rgb32):
    _, _, plain = _inpainting_run(rgb32, False)
    op, target, kept = _inpainting_run(rgb32, True)
    assert kept.losses == plain.losses
    assert torch.equal(kept.targets[0].final, op.consistent(plain.targets[0].final, target.y))
    assert kept.targets[0].oracle_best > plain.targets[0].oracle_best  # observed pixels are exact


def test_an_operator_without_an_exact_step_is_refused(rgb32):
    torch.manual_seed(0)
    net = nets.build(tiny_spec())
    z = nets.make_input(net, *nets.padded_size(net, 32, 32), torch.Generator().manual_seed(0))
    with pytest.raises(LipError, match="denoise operator"):
        fit(net, [Target(z=z, op=Denoise(25), y=rgb32, size=(32, 32))], FitConfig(iters=2, data_consistency=True))


@pytest.mark.parametrize("task", ["denoise", "inpaint", "sr", "mri"])
def test_a_task_says_it_has_the_step_exactly_when_its_operator_has_it(task):
    """Task.data_consistency lets a flag be refused before any image is read; it must agree with the operator."""
    t = TASKS.get(task)
    op = t.build({**config.preset("fast", task)}, 16, 16, gray=False, inpaint_mask=None, seed=0)
    assert (op.consistent is not None) == t.data_consistency


def test_presets_and_records():
    fast = {t: config.preset("fast", t)["data_consistency"] for t in TASKS}
    assert fast["inpaint"] and not fast["mri"] and not fast["denoise"] and not fast["sr"]
    assert all(TASKS.get(t).data_consistency for t in fast if fast[t]) and TASKS.get("mri").data_consistency
    assert not any(config.preset("paper", t)["data_consistency"] for t in TASKS)  # the papers score the net
    assert "data_consistency" not in FitConfig().recorded()  # rows written before it still resume
    assert FitConfig(data_consistency=True).recorded()["data_consistency"] is True
    with pytest.raises(LipError, match="data_consistency"):
        config.fit_config({**config.preset("fast", "inpaint"), "data_consistency": "yes"}, False,
                          torch.device("cpu"), 0)


def test_the_cli_flag_reaches_the_fit_and_the_report(rgb64_path, tmp_path):
    def run(*flags):
        return CliRunner().invoke(app, ["restore", "--simulate", str(rgb64_path), "--task", "inpaint", "--iters",
                                        "3", "--prior", "deep-decoder", "--dd-k", "16", "--json", "-o", str(tmp_path / "o.png"), *flags])

    on, off = run(), run("--no-data-consistency")
    assert on.exit_code == off.exit_code == 0, on.output + off.output
    on_, off_ = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (on, off))
    assert on_["data_consistency"] is True and off_["data_consistency"] is False
    assert on_["psnr_final"] > off_["psnr_final"]
    bad = CliRunner().invoke(app, ["restore", "--simulate", str(rgb64_path), "--iters", "2", "--data-consistency",
                                   "-o", str(tmp_path / "d.png")])
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [
        "lip: error: --data-consistency puts back what the observation holds exactly; denoise has no exact step "
        "for it (inpaint and mri have one): drop it"] and not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("mode", ["RGB", "I;16"])
def test_a_real_inpainting_keeps_the_observed_pixels_byte_for_byte(tmp_path, mode):
    """What a user sees: where the mask is white, the output file holds the input's own values (8- and 16-bit)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    if mode == "RGB":
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    else:
        pixels = rng.integers(0, 65536, (32, 32), dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    keep = rng.random((32, 32)) < 0.6
    Image.fromarray(np.where(keep, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    done = CliRunner().invoke(app, ["restore", str(tmp_path / "in.png"), "--task", "inpaint", "--inpaint-mask",
                                    str(tmp_path / "mask.png"), "--iters", "3", "--prior", "deep-decoder", "--dd-k", "16",
                                    "-o", str(tmp_path / "out.png")])
    assert done.exit_code == 0, done.output
    out = images.load_image(tmp_path / "out.png").pixels  # (C, H, W) floats in [0, 1], 16-bit decoded by lip
    given = images.load_image(tmp_path / "in.png").pixels
    assert out.shape == given.shape and np.array_equal(out[:, keep], given[:, keep])
    assert not np.array_equal(out[:, ~keep], given[:, ~keep])


def test_a_transfer_grid_applies_the_flag_to_the_tasks_that_have_the_step(rgb64_path, tmp_path):
    """A grid mixes tasks: --data-consistency asks for the step wherever it exists, not for every task."""
    artifact.save(tmp_path / "m.safetensors", make_artifact())

    def grid(**flags):
        return api.transfer_grid([rgb64_path], [tmp_path / "m.safetensors"], tasks="denoise,inpaint,sr4",
                                 config="paper", iters=2, device="cpu", **flags).configs
    on, off = grid(data_consistency=True), grid(data_consistency=False)
    assert [on[t].data_consistency for t in ("denoise", "inpaint", "sr4")] == [False, True, False]
    assert not any(c.data_consistency for c in off.values())
    with pytest.raises(LipError, match=r"no task of the grid \(denoise\) has an exact step"):
        api.transfer_grid([rgb64_path], [tmp_path / "m.safetensors"], tasks="denoise", data_consistency=True,
                          iters=2, device="cpu")
