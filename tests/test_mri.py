"""MRI (issue 13): the centred orthonormal Fourier operator, its sampling masks and units, k-space files,
the zero-filled baseline, and `lip restore` / `prune` / `transfer` on k-space (tiny nets, few iterations)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import artifact, config, images
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.metrics import psnr, ssim
from lipcli.physics import MASK_TYPES, MRI, TASKS, LinearPhysics, fft2c, ifft2c, sampling_mask
from lipcli.problem import load_problem
from prune_helpers import NARROW_YAML, make_mask

RUN = ["--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--precision", "fp32", "--seed", "0"]


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


# ---------------------------------------------------------------- the operator

def test_fft2c_is_fastmri_centred_orthonormal_and_inverted():
    x = torch.rand(2, 13, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = fft2c(x)
    xn = x[0].numpy()
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(xn), norm="ortho"))
    assert np.allclose(k[0].numpy(), expected, atol=1e-12)
    assert torch.allclose(k.abs().pow(2).sum(), x.pow(2).sum())  # isometry (Parseval)
    assert torch.allclose(ifft2c(k).real, x, atol=1e-12) and ifft2c(k).imag.abs().max() < 1e-12
    assert torch.allclose(k[:, 13 // 2, 10 // 2].real, x.sum(dim=(-2, -1)) / (13 * 10) ** 0.5)  # DC centred


@pytest.mark.parametrize("scale", [1.0, 3e-4])
def test_adjointness_at_an_odd_size_with_a_2d_mask(scale):
    gen = torch.Generator().manual_seed(1)
    op = MRI(torch.rand(11, 14, generator=gen) < 0.4, "random 2-D")
    op.scale = scale
    x = torch.rand(2, 3, 11, 14, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 2, 11, 14, generator=gen, dtype=torch.float64)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    assert torch.allclose(op.A_adjoint(y), LinearPhysics.A_adjoint(op, y), atol=1e-12)


def test_fully_sampled_loss_is_the_image_mse_and_the_operator_an_isometry():
    gen = torch.Generator().manual_seed(2)
    op = MRI(torch.ones(12, 16, dtype=torch.bool), "full")
    x, truth = torch.rand(1, 3, 12, 16, generator=gen), torch.rand(1, 1, 12, 16, generator=gen)
    y = op.A(truth)
    assert torch.allclose(y.pow(2).sum(), truth.pow(2).sum(), rtol=1e-5)
    assert torch.allclose(op.loss(x, y), (x.mean(1, keepdim=True) - truth).pow(2).mean(), rtol=1e-5)
    assert torch.allclose(op.baseline(y)[1], truth, atol=1e-6)  # zero-filled = the image when nothing is missing


def test_loss_counts_only_sampled_entries():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:, 3:5] = True
    op = MRI(mask, "two columns")
    x = torch.rand(1, 3, 8, 8)
    y = op.A(x)
    y[:, :, :, 0] = 1e6  # junk at unsampled entries changes nothing: A and the loss see M y only
    assert float(op.loss(x, y * mask)) < 1e-10


def column_mask(width: int, acceleration: float, center_fraction: float, kind: str, seed: int) -> torch.Tensor:
    """The (W,) columns of a column mask type."""
    assert MASK_TYPES[kind].columns
    return sampling_mask(kind, 1, width, acceleration, center_fraction, seed)[0]


@pytest.mark.parametrize("kind", ["random", "equispaced"])
@pytest.mark.parametrize("acc", [4, 8])
def test_column_masks(kind, acc):
    w = 320
    m = column_mask(w, acc, 0.08, kind, seed=3)
    assert m.dtype == torch.bool and m.shape == (w,)
    assert torch.equal(m, column_mask(w, acc, 0.08, kind, seed=3))
    low = round(w * 0.08)
    start = (w - low + 1) // 2
    assert m[start:start + low].all() and m[w // 2]  # the centre, DC included, always
    assert abs(int(m.sum()) - w / acc) <= (0.25 * w / acc if kind == "random" else 2)
    if kind == "equispaced":
        outside = torch.nonzero(~torch.zeros(w, dtype=torch.bool).index_fill(0, torch.arange(start, start + low), True)
                                & m).flatten()
        gaps = outside.diff()
        assert gaps.max() - gaps[gaps < w // 4].min() <= 1 + low  # evenly spaced (the centre block aside)


@pytest.mark.parametrize("kind", ["variable-density", "radial"])
@pytest.mark.parametrize("acc", [4, 8])
@pytest.mark.parametrize("size", [(128, 128), (101, 132)])
def test_2d_masks_hit_the_acceleration_and_sample_the_centre(kind, acc, size):
    h, w = size
    m = sampling_mask(kind, h, w, acc, 0.08, seed=5)
    assert m.dtype == torch.bool and m.shape == (h, w)
    assert torch.equal(m, sampling_mask(kind, h, w, acc, 0.08, seed=5))
    assert not torch.equal(m, sampling_mask(kind, h, w, acc, 0.08, seed=6))
    assert h * w / int(m.sum()) == pytest.approx(acc, rel=0.03)  # the realised acceleration
    ch, cw = round(h * 0.08), round(w * 0.08)
    r0, c0 = (h - ch + 1) // 2, (w - cw + 1) // 2
    assert m[r0:r0 + ch, c0:c0 + cw].all() and m[h // 2, w // 2]  # the centre block, DC inside
    assert not m.all(dim=0).any()  # points or spokes, not whole columns
    far = m[:h // 8].float().mean(), m[3 * h // 8:5 * h // 8, 3 * w // 8:5 * w // 8].float().mean()
    assert far[0] < 0.5 * far[1]  # denser near DC than far from it


def test_radial_spokes_are_nested_and_refuse_what_they_cannot_reach():
    few, many = (sampling_mask("radial", 64, 64, acc, 0.08, seed=0) for acc in (8, 3))
    assert bool((few <= many).all())  # golden-angle spokes: a lower acceleration only adds spokes
    with pytest.raises(LipError, match="radial samples at most"):
        sampling_mask("radial", 64, 64, 1.1, 0.08, seed=0)  # spokes stay in the inscribed ellipse


@pytest.mark.parametrize("kind", list(MASK_TYPES))
def test_every_mask_type_flows_through_the_operator(kind):
    """Each drawn mask at an odd, non-square size: A and A_adjoint are adjoint, and the mask file round-trips."""
    gen = torch.Generator().manual_seed(7)
    op = MRI(sampling_mask(kind, 37, 30, 4, 0.1, seed=0), kind)
    x = torch.rand(2, 3, 37, 30, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 2, 37, 30, generator=gen, dtype=torch.float64)
    lhs, rhs = _dot(op.A(x), y), _dot(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    saved = op.mask_array()
    assert saved.shape == ((30,) if MASK_TYPES[kind].columns else (37, 30))
    assert np.array_equal(np.broadcast_to(saved, (37, 30)), op.mask.numpy().astype(np.uint8))


def test_masks_differ_by_seed_and_bad_settings_are_refused():
    assert not torch.equal(column_mask(128, 4, 0.08, "random", 0), column_mask(128, 4, 0.08, "random", 1))
    for args, needle in [(("spiral", 1, 128, 4, 0.08, 0), "--mask-type"),
                         (("random", 1, 128, 0.5, 0.08, 0), "at least 1"),
                         (("random", 1, 128, 8, 0.3, 0), "--center-fraction"),
                         (("random", 1, 128, 4, 0, 0), "must be in"),
                         (("variable-density", 64, 64, 8, 0.4, 0), "keeps 676 of 4096 k-space points")]:
        with pytest.raises(LipError, match=needle):
            sampling_mask(*args)
    with pytest.raises(LipError, match="samples nothing"):
        MRI(torch.zeros(4, 4, dtype=torch.bool), "empty")


def test_the_fast_preset_keeps_patience_300_for_mri():
    """No noise gate on noise-free k-space: the fast preset's shorter patience is for gated denoising."""
    assert config.preset("fast", "mri")["es_patience"] == 300 > config.preset("fast", "denoise")["es_patience"]


def test_the_headroom_leaves_room_above_the_zero_filled_peak_and_records_as_before_at_1():
    """--headroom 1.5: a net output of 1 is 1.5 zero-filled peaks: undersampling can put that peak below the true one
    (a radial 8x mask puts the brain's at 0.75 of it here), which the default, 1, caps the fit at. Headroom 1 is
    recorded as before the knob (left out), so older searches resume and older grid rows are reused."""
    clean = images.to_tensor(images.load_image("sample:mri-brain"))
    task = TASKS.get("mri")
    settings = {**task.options, "mask_type": "radial", "acceleration": 8}
    ops = {h: task.build({**settings, "headroom": h}, 128, 128, gray=True, inpaint_mask=None, seed=0) for h in (1, 1.5)}
    y = ops[1].A(clean)
    peak = float(ifft2c(torch.complex(y[:, 0], y[:, 1])).abs().max())
    assert peak < 0.8 * float(clean.max())  # the zero-filled peak is below the true one
    assert ops[1].calibrate(y) == pytest.approx(peak) and ops[1.5].calibrate(y) == pytest.approx(1.5 * peak)
    assert 1.5 * peak > float(clean.max())  # room for every pixel of the clean image
    assert "headroom" not in ops[1].params() and ops[1.5].params()["headroom"] == 1.5
    assert "headroom" not in task.degradation(settings, None) and task.options["headroom"] == 1
    assert task.degradation({**settings, "headroom": 1.5}, None)["headroom"] == 1.5
    # a fit saved under one headroom is not continued under another (its loss is in other units); at 1 as before
    assert ops[1].loss_settings() == {} and ops[1.5].loss_settings() == {"headroom": 1.5}
    # a refusal names what a record without the key was made with, which --headroom 1 gives back
    assert config.differences({"mask": "m"}, {"mask": "m", "headroom": 1.5}) == ["headroom 1.0 -> 1.5"]
    assert config.differences({"fit": {"sgld": 2.0}}, {"fit": {}}) == ["fit.sgld 2.0 -> 0.0"]
    for bad in (0.5, 1e40):  # 1e40 x a peak overflows float32
        with pytest.raises(LipError, match="from 1 to 100"):
            MRI(ops[1].mask, "m", headroom=bad)


def test_kspace_units_do_not_change_the_fit_and_scores_follow_fastmri(tmp_path):
    """k-space in scanner-like units (x 1e-4) gives the same fit target and zero-filled image (the net's
    units are the zero-filled maximum); scores use the reference's maximum as data range."""
    clean = images.to_tensor(images.load_image("sample:mri-brain"))
    op = TASKS.get("mri").build(TASKS.get("mri").options, 128, 128, gray=True, inpaint_mask=None, seed=0)
    y = op.A(clean)
    PILImage.fromarray(np.uint8(np.asarray(clean[0, 0]) * 255)).save(tmp_path / "ref.png")
    np.save(tmp_path / "m.npy", op.mask_array())
    problems = []
    for units in (1.0, 1e-4):
        np.save(tmp_path / "k.npy", op.kspace(y) * np.float32(units))
        problems.append(load_problem(tmp_path / "k.npy", "mri", {"sampling_mask": tmp_path / "m.npy"},
                                     simulate=False, seed=0, clean=tmp_path / "ref.png"))
    a, b = problems
    assert b.op.scale == pytest.approx(a.op.scale * 1e-4, rel=1e-5)
    assert torch.allclose(a.y / a.op.scale, b.y / b.op.scale, rtol=1e-4, atol=1e-6)
    assert torch.allclose(a.op.baseline(a.y)[1], b.op.baseline(b.y)[1], atol=1e-5)
    assert float(a.op.baseline(a.y)[1].max()) == pytest.approx(1.0) and a.op.headroom == 1
    # fastMRI's evaluation, computed independently: magnitude of the zero-filled image, data range = max(ref)
    base = a.baseline()
    zf = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(op.kspace(y)), norm="ortho")))
    ref = np.asarray(PILImage.open(tmp_path / "ref.png"), dtype=np.float64) / 255
    mse = np.mean((zf - ref) ** 2)
    assert base["name"] == "zero-filled" and base["psnr"] == pytest.approx(10 * np.log10(ref.max() ** 2 / mse), abs=1e-3)


def test_metrics_with_a_data_range_are_scale_free():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.rand(1, 1, 24, 24, generator=gen), torch.rand(1, 1, 24, 24, generator=gen)
    assert psnr(x * 5e-3, y * 5e-3, data_range=5e-3) == pytest.approx(psnr(x, y), abs=1e-5)
    assert ssim(x * 5e-3, y * 5e-3, data_range=5e-3) == pytest.approx(ssim(x, y), abs=1e-6)
    assert psnr(x * 2, y * 2, data_range=2.0) != psnr(x * 2, y * 2)  # the default clamps to [0, 1]


def test_the_bundled_samples():
    for name in ("mri-brain", "phantom"):
        img = images.load_image(f"sample:{name}")
        assert (img.channels, img.height, img.width) == (1, 128, 128) and img.pixels.max() > 0.9


def test_a_colour_image_is_simulated_as_one_gray_image(rgb64_path):
    p = load_problem(rgb64_path, "mri", TASKS.get("mri").options, simulate=True, seed=0)
    assert p.gray and p.clean.shape == (1, 3, 64, 64) and torch.equal(p.clean[:, 0], p.clean[:, 2])


# ---------------------------------------------------------------- the commands

def lip(*args: Any) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A 48x40 crop of the bundled brain, narrow.yaml, working directory."""
    brain = images.load_image("sample:mri-brain").pixels[0, 40:88, 44:84]
    PILImage.fromarray(np.uint8(np.round(brain * 255))).save(tmp_path / "brain.png")
    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_restore_reports_zero_filled_and_reproduces_from_saved_kspace(folder):
    sim = json.loads(lip("restore", "brain.png", "--task", "mri", "--simulate", "--acceleration", "4",
                         "--mask-type", "equispaced", "--iters", "4", *RUN, "--save-kspace", "ks", "-o", "sim.png",
                         "--json"))
    assert sim["task"] == "mri" and sim["baseline"]["name"] == "zero-filled"
    assert sim["baseline"]["psnr"] > 10 and 0 < sim["baseline"]["ssim"] < 1
    k, m = np.load("ks/kspace.npy"), np.load("ks/mask.npy")
    assert k.dtype == np.complex64 and k.shape == (48, 40) and m.shape == (40,) and set(np.unique(m)) == {0, 1}
    assert np.all(k[:, m == 0] == 0)
    real = json.loads(lip("restore", "--task", "mri", "ks/kspace.npy", "--sampling-mask", "ks/mask.npy",
                          "--clean", "brain.png", "--iters", "4", *RUN, "-o", "real.png", "--json"))
    same = ("psnr_stopped", "ssim_stopped", "oracle_best_psnr", "baseline", "stopped_at")
    assert {key: real[key] for key in same} == {key: sim[key] for key in same}
    assert real["operator"]["scale"] == sim["operator"]["scale"]
    # the same image: 8-bit in the units of the PNG it was simulated from (so the file scores as reported: it was
    # brighter by 1 / scale), 16-bit from float k-space (white = scale)
    sim_png = np.asarray(PILImage.open(folder / "sim.png"), dtype=np.float64) / 255
    out = PILImage.open(folder / "real.png")
    assert out.mode.startswith("I") and out.size == (40, 48)
    real_png = np.asarray(out, dtype=np.float64) / 65535
    assert np.abs(real_png * sim["operator"]["scale"] - sim_png).max() <= 0.5 / 255 + 1e-5
    clean = np.asarray(PILImage.open(folder / "brain.png"), dtype=np.float64) / 255
    from_file = 10 * np.log10(clean.max() ** 2 / ((sim_png - clean) ** 2).mean())
    assert from_file == pytest.approx(sim["psnr_final"], abs=0.05)
    # without a reference: no scores; the default output is the magnitude in the k-space's units
    bare = json.loads(lip("restore", "--task", "mri", "ks/kspace.npy", "--sampling-mask", "ks/mask.npy",
                          "--iters", "2", *RUN, "--json"))
    assert bare["psnr_stopped"] is None and bare["baseline"]["psnr"] is None
    magnitude = np.load(bare["output"])
    assert bare["output"].endswith("kspace_restored.npy") and magnitude.dtype == np.float32
    assert magnitude.shape == (48, 40) and 0 <= magnitude.min() and magnitude.max() <= bare["operator"]["scale"]


def test_human_output_shows_lip_and_zero_filled(folder):
    result = CliRunner().invoke(app, ["restore", "brain.png", "--task", "mri", "--simulate", "--iters", "2", *RUN,
                                      "-o", "x.png"])
    assert result.exit_code == 0, result.output
    assert "zero-filled: psnr" in result.stderr and "ssim stopped" in result.stderr


def test_a_restore_says_when_the_image_piles_up_at_the_ceiling_and_what_gives_it_room():
    """Blind: the share of the output at >= 97% of the net's top; 1% or more is a capped scan (the bundled scans:
    1.9-3.1% where capped, none elsewhere), and the note names the headroom that gives room."""
    op = MRI(torch.ones(8, 8), "m")
    x = torch.full((1, 3, 10, 10), 0.5)
    assert op.review(x) == ({"at_ceiling": 0.0}, None)
    x[..., 0, :2] = 0.99  # 2 of 100 pixels
    fields, note = op.review(x)
    assert fields == {"at_ceiling": pytest.approx(0.02)} and "2.0% of the image" in note and "--headroom 1.5" in note
    assert "--headroom 2.25" in MRI(torch.ones(8, 8), "m", headroom=1.5).review(x)[1]
    x = torch.full((1, 3, 10, 20), 0.5)
    x[..., 0, 0] = 0.99
    assert op.review(x)[1] is None  # 1 of 200 pixels is under 1%: no note


def test_the_save_kspace_hint_gives_back_a_headroom_other_than_the_default(folder):
    result = CliRunner().invoke(app, ["restore", "brain.png", "--task", "mri", "--simulate", "--iters", "2", *RUN,
                                      "--headroom", "2", "--save-kspace", "ks", "-o", "x.png", "--json"])
    assert result.exit_code == 0, result.output
    hint = re.search(r"reconstruct them with (--task mri [^)]*)\)", result.stderr).group(1)
    assert hint.endswith("--headroom 2")
    real = json.loads(lip("restore", *hint.split(), "--clean", "brain.png", "--iters", "2", *RUN, "-o", "r.png",
                          "--json"))
    assert real["psnr_final"] == json.loads(result.stdout)["psnr_final"]


def test_prune_and_transfer_run_on_kspace(folder):
    lip("restore", "brain.png", "--task", "mri", "--simulate", "--iters", "1", *RUN, "--save-kspace", "ks",
        "-o", "x.png")
    lip("prune", "--task", "mri", "ks/kspace.npy", "--sampling-mask", "ks/mask.npy", "--rounds", "2",
        "--iters", "3", *RUN, "-o", "t.safetensors")
    art = artifact.load(folder / "t.safetensors")
    assert art.rounds == 2 and art.meta["task"] == "mri"
    lip("transfer", "brain.png", "--mask", "t.safetensors", "--tasks", "mri4,mri8", "--rounds", "1",
        "--baselines", "dense", "--iters", "3", *RUN, "--out", "res")
    rows = [json.loads(line) for line in (folder / "res" / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["method"]) for r in rows} == {(t, m) for t in ("mri4", "mri8") for m in ("dense", "mask")}
    assert {r["settings"]["degradation"]["acceleration"] for r in rows} == {4.0, 8.0}
    assert all(r["metric"] == "psnr" and r["psnr_stopped"] > 0 for r in rows)


def test_2d_masks_through_restore_prune_and_transfer(folder):
    """A radial scan saves an (H, W) mask file, a channel ticket is searched on it, and a transfer grid
    draws variable-density masks from a config key."""
    sim = json.loads(lip("restore", "brain.png", "--task", "mri", "--simulate", "--mask-type", "radial", "--iters", "1",
                         *RUN, "--save-kspace", "ks", "-o", "x.png", "--json"))
    m = np.load("ks/mask.npy")
    assert m.shape == (48, 40) and sim["operator"]["sampled"] == pytest.approx(m.mean(), abs=1e-6)
    assert sim["operator"]["mask"].startswith("radial(") and 48 * 40 / m.sum() == pytest.approx(4, rel=0.03)
    lip("prune", "--task", "mri", "--simulate", "brain.png", "--mask-type", "radial", "--granularity", "channel",
        "--rounds", "2", "--iters", "3", *RUN, "-o", "c.safetensors")
    art = artifact.load(folder / "c.safetensors")
    assert art.rounds == 2 and art.meta["operator"]["mask"] == sim["operator"]["mask"]
    (folder / "vd.yaml").write_text(NARROW_YAML + "mask_type: variable-density\n")
    lip("transfer", "brain.png", "--mask", "c.safetensors", "--tasks", "mri8", "--rounds", "2", "--baselines", "dense",
        "--iters", "3", "--config", "vd.yaml", *RUN[2:], "--out", "res")
    rows = [json.loads(line) for line in (folder / "res" / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"dense", "mask"} and all(r["psnr_stopped"] > 0 for r in rows)
    assert {r["operator"]["mask"] for r in rows} == {"variable-density(acceleration=8, center_fraction=0.08, seed=0)"}
    assert {r["settings"]["degradation"]["mask_type"] for r in rows} == {"variable-density"}


def test_mask_search_on_a_simulated_scan_records_the_operator(folder):
    make_mask(folder / "A.safetensors", rounds=1)  # the narrow net's mask restores k-space too
    row = json.loads(lip("restore", "brain.png", "--task", "mri", "--simulate", "--mask", "A.safetensors",
                         "--iters", "2", *RUN, "-o", "m.png", "--json"))
    assert row["operator"]["name"] == "mri" and row["sparsity"] > 0.4


def test_the_python_api_takes_a_kspace_array(folder):
    from lipcli import api

    op = MRI(sampling_mask("equispaced", 48, 40, 4, 0.08, 0), "equispaced")
    k = op.kspace(op.A(images.to_tensor(images.load_image(folder / "brain.png"))))
    np.save(folder / "m.npy", op.mask_array())
    out = api.restore(k, task="mri", sampling_mask=folder / "m.npy", clean=folder / "brain.png", iters=2,
                      config="narrow.yaml", device="cpu", precision="fp32")
    assert out.report["baseline"]["name"] == "zero-filled" and out.report["psnr_stopped"] is not None
    assert out.image.dtype == np.float32 and out.image.shape == (48, 40)  # magnitude in the k-space's units
    with pytest.raises(LipError, match="holds real float64"):
        api.restore(np.abs(k).astype(np.float64), task="mri", sampling_mask=folder / "m.npy", iters=1,
                    config="narrow.yaml", device="cpu")
