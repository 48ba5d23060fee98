"""Compressive sensing from files (issue 13): the streamed Gaussian operator, a given matrix, the operator
file, measurements read back into identical reconstructions, and Median-of-Means for the DIP prior."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli.cli import app
from lipcli.cs import MedianOfMeans, solve_dip
from lipcli.errors import LipError
from lipcli.physics import GaussianCS, StructuredCS, measurements
from lipcli.physics.cs import MatrixCS, from_description
from prune_helpers import make_mask

FAST = ["--device", "cpu", "--threads", "1"]


def lip(*args: object) -> dict:
    """Run `lip cs ... --json` and return its result object."""
    result = CliRunner().invoke(app, ["cs", *map(str, args), *FAST, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _dense(shape: tuple[int, int, int], m: int, outliers: int, seed: int) -> torch.Tensor:
    """The Gaussian matrix as one draw: what lip always built, and still builds when it is small."""
    a = torch.randn((m, math.prod(shape)), generator=torch.Generator().manual_seed(seed)) / math.sqrt(m)
    a[GaussianCS(shape, m, outliers=outliers, seed=seed).bad] = 1.0
    return a


@pytest.mark.parametrize("shape, m", [((1, 32, 32), 300), ((3, 7, 5), 37), ((3, 9, 11), 200)])
def test_streamed_gaussian_is_the_dense_matrix(shape, m):
    """Blocks of rows regenerated from the seed give the one-draw matrix exactly, and the same products,
    adjoint and gradients, with a last block shorter than the others: to the last bits only where the BLAS
    sums the blocks as it sums the whole matrix (not with AMX kernels, which sum the adjoint's rows in
    another order), so they are compared to float32 rounding."""
    kept = GaussianCS(shape, m, outliers=4, seed=3)
    streamed = GaussianCS(shape, m, outliers=4, seed=3, keep=False)
    streamed.block_rows = 16  # several blocks even at this size
    assert kept.matrix is not None and streamed.matrix is None and m % 16
    assert torch.equal(kept.matrix, _dense(shape, m, 4, 3))
    assert torch.equal(torch.cat([a for _, a in streamed.blocks()]), kept.matrix)
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.randn((2, m), generator=torch.Generator().manual_seed(1))
    grads = []
    for op in (kept, streamed):
        x.grad = None
        loss = op.loss(x, y)
        loss.backward()
        grads.append((loss.detach(), op.A_adjoint(y), x.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: GaussianCS((3, 9, 11), 150, outliers=3, seed=1, keep=False),
    lambda: MatrixCS(np.random.default_rng(0).standard_normal((150, 297)), (3, 9, 11), "A.npy"),
])
def test_block_operators_are_adjoint_and_differentiate_as_their_adjoint(make):
    op = make()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2, 3, 9, 11), generator=gen, dtype=torch.float64)
    y = torch.randn((2, 150), generator=gen, dtype=torch.float64)
    lhs, rhs = float((op.A(x) * y).sum()), float((x * op.A_adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    xg = x.clone().requires_grad_(True)
    (op.A(xg) * y).sum().backward()
    assert torch.allclose(xg.grad, op.A_adjoint(y), atol=1e-12)


def test_a_given_matrix_measures_the_image_as_numpy_flattens_it(monkeypatch):
    """y = A @ img.reshape(-1) for the image as an (H, W, C) array; kept and streamed alike."""
    rng = np.random.default_rng(0)
    img = rng.random((9, 11, 3))  # (H, W, C)
    a = rng.standard_normal((40, img.size))
    x = torch.from_numpy(img).permute(2, 0, 1)[None]  # (1, C, H, W)
    kept = MatrixCS(a, (3, 9, 11), "A.npy")
    monkeypatch.setattr("lipcli.physics.cs.HOLD_ENTRIES", 0)
    streamed = MatrixCS(a, (3, 9, 11), "A.npy")
    streamed.block_rows = 16
    assert kept.matrix is not None and streamed.matrix is None
    want = a.astype(np.float32).astype(np.float64) @ img.reshape(-1)
    for op in (kept, streamed):
        assert np.allclose(op.A(x)[0].numpy(), want, rtol=1e-12, atol=1e-12)


def test_operator_description_round_trips(tmp_path):
    for op in (GaussianCS((3, 9, 11), 60, outliers=2, noise=0.05, seed=4), StructuredCS((1, 16, 8), 50, seed=2)):
        y = op(torch.rand(1, *op.shape), torch.Generator().manual_seed(0))
        measurements.save_measurements(tmp_path / op.kind, y, op)
        again, image = measurements.read_operator(tmp_path / op.kind / "operator.yaml")
        assert image == op.shape[1:] and "version: 1\n" in (tmp_path / op.kind / "operator.yaml").read_text()
        assert type(again) is type(op) and again.describe() == op.describe()
        assert again.state_dict().keys() == op.state_dict().keys()
        assert all(torch.equal(v, again.state_dict()[k]) for k, v in op.state_dict().items())
        assert torch.equal(measurements.read_y(tmp_path / op.kind / "y.npy", op.m, "op"), y)


@pytest.mark.parametrize("change, needle", [
    ({"m": 0}, "^m 0 must be"), ({"kind": "fourier"}, "unknown kind"), ({"shape": [9, 11, 2]}, "channels"),
    ({"seed": 1.5}, "seed must be an integer"), ({"noise": True}, "noise must be a number"),
    ({"extra": 1}, "unknown key 'extra'"), ({"outliers": 60}, "^outliers 60 must be"), ({"m": 10_000}, "exceed the 297 values"),
])
def test_a_bad_description_is_one_line_naming_the_field(change, needle):
    d = {**GaussianCS((3, 9, 11), 60, seed=4).describe(), **change}
    with pytest.raises(LipError, match=needle):
        from_description(d)


def test_an_operator_file_reads_numbers_as_a_person_writes_them(tmp_path):
    """`noise: 1e-3` is a number (PyYAML alone reads a string: YAML 1.1 wants 1.0e-3)."""
    op = GaussianCS((1, 8, 8), 20, noise=0.01, seed=1)
    measurements.save_measurements(tmp_path, op(torch.rand(1, 1, 8, 8), torch.Generator().manual_seed(0)), op)
    path = tmp_path / "operator.yaml"
    path.write_text(path.read_text().replace("noise: 0.01", "noise: 1e-3").replace("outlier_value: 10000.0",
                                                                                   "outlier_value: 5E3"))
    again, _ = measurements.read_operator(path)
    assert (again.noise, again.outlier_value) == (0.001, 5000.0)


def test_simulated_measurements_read_back_reconstruct_identically(tmp_path):
    """--save-measurements, then the files alone: the same output bytes and numbers (generator prior)."""
    common = ["--iters", "20", "--restarts", "1", "--outliers", "4", "-m", "200"]
    first = lip("mnist:3", "--simulate", *common, "--save-measurements", tmp_path / "meas", "-o", tmp_path / "a.png")
    desc = (tmp_path / "meas" / "operator.yaml").read_text()
    assert "kind: gaussian" in desc and "m: 200" in desc and "outliers: 4" in desc
    again = lip(tmp_path / "meas" / "y.npy", "--operator", tmp_path / "meas" / "operator.yaml", "--iters", "20",
                "--restarts", "1", "--clean", tmp_path / "a.png", "-o", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert again["selection_losses"] == first["selection_losses"] and again["operator"] == first["operator"]
    assert again["mse"] < 1e-5  # scored against the first run's output, which it reproduced


def test_the_default_output_is_beside_the_input_as_lip_restores_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lip("mnist:3", "--simulate", "--iters", "2", "--restarts", "1", "-m", "50", "--save-measurements", "meas")
    rep = lip("meas/y.npy", "--operator", "meas/operator.yaml", "--iters", "2", "--restarts", "1")
    assert rep["output"] == str(Path("meas") / "y_cs.png") and (tmp_path / "meas" / "y_cs.png").is_file()


def test_a_padded_digit_read_back_from_files_is_cropped_as_it_was_measured(tmp_path):
    """A 28x28 digit measured for the 32x32 generator: the operator file records the image's own size
    (version 2), so recovering from the files gives the same 28x28 image and numbers; a DIP or an old version-1
    reading of such a file is refused in one line rather than recovering the padding too."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    PILImage.fromarray(digit).save(tmp_path / "digit.png")
    common = ["--iters", "5", "--restarts", "1", "-m", "100"]
    first = lip(tmp_path / "digit.png", "--simulate", *common, "--save-measurements", tmp_path / "meas",
                "-o", tmp_path / "a.png")
    text = (tmp_path / "meas" / "operator.yaml").read_text()
    assert "version: 2" in text and "image: [28, 28]" in text and "shape: [32, 32, 1]" in text
    again = lip(tmp_path / "meas" / "y.npy", "--operator", tmp_path / "meas" / "operator.yaml", *common[:4],
                "--clean", tmp_path / "digit.png", "-o", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert again["mse"] == pytest.approx(first["mse"]) and again["padded"] == "28x28 -> 32x32"
    result = CliRunner().invoke(app, ["cs", str(tmp_path / "meas" / "y.npy"), "--operator",
                                      str(tmp_path / "meas" / "operator.yaml"), "--prior", "dip", *FAST])
    assert result.exit_code == 2 and "zero-padded to 32x32 for a generator prior" in result.output
    (tmp_path / "meas" / "operator.yaml").write_text(text.replace("version: 2", "version: 1"))
    with pytest.raises(LipError, match="unknown key 'image'"):  # a version-1 file has no such key
        measurements.read_operator(tmp_path / "meas" / "operator.yaml")


@pytest.mark.parametrize("image, needle", [([28], "must be \\[H, W\\]"), ([33, 28], "does not fit"),
                                           ("28x28", "must be \\[H, W\\]")])
def test_a_bad_image_key_is_one_line(tmp_path, image, needle):
    op = GaussianCS((1, 32, 32), 60, seed=4)
    measurements.save_measurements(tmp_path, op.A(torch.rand(1, *op.shape)), op, (28, 28))
    path = tmp_path / "operator.yaml"
    path.write_text(path.read_text().replace("image: [28, 28]", f"image: {image}"))
    with pytest.raises(LipError, match=needle):
        measurements.read_operator(path)


def test_cs_dip_from_a_matrix_file_matches_the_simulated_run(tmp_path):
    """An RGB image measured by lip (no noise) and the same measurements given as y.npy + A.npy: the same
    reconstruction, so lip's and the user's flattening agree. -o X.npy writes the float image."""
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    from lipcli import images

    images.save_image(tmp_path / "x.png", images.from_tensor(x))
    args = ["--prior", "dip", "--iters", "3", "--solver", "ls"]
    lip(tmp_path / "x.png", "--simulate", "-m", "300", "--noise", "0", "--operator", "gaussian", *args,
        "-o", tmp_path / "sim.npy")
    clean = images.to_tensor(images.load_image(tmp_path / "x.png"))
    op = GaussianCS((3, 16, 16), 300, noise=0.0, seed=0)
    np.save(tmp_path / "A.npy", op.matrix.numpy())
    np.save(tmp_path / "y.npy", op.A(clean)[0].numpy())
    rep = lip(tmp_path / "y.npy", "--matrix", tmp_path / "A.npy", "--shape", "16,16,3", *args,
              "--clean", tmp_path / "x.png", "-o", tmp_path / "file.npy")
    sim, got = np.load(tmp_path / "sim.npy"), np.load(tmp_path / "file.npy")
    assert got.shape == (16, 16, 3) and got.dtype == np.float32
    assert np.array_equal(sim, got)
    assert rep["operator"]["matrix"].endswith("A.npy") and "mse" in rep
    # the user's measurements: their noise and outliers are not lip's to know
    assert {k: rep["operator"][k] for k in ("noise", "outliers", "outlier_value")} == dict.fromkeys(
        ("noise", "outliers", "outlier_value"))


def test_median_of_means_loss_ignores_a_few_huge_rows():
    op = GaussianCS((1, 8, 8), 40, seed=0)
    x, y = torch.rand(1, 1, 8, 8), torch.zeros(1, 40)
    assert torch.allclose(MedianOfMeans(op, 1000).loss(x, y), op.loss(x, y))  # one batch: the mean
    y[0, :2] = 1e4
    assert float(MedianOfMeans(op, 4).loss(x, y)) < 10 < float(op.loss(x, y))


def test_cs_dip_with_mom_resists_outliers_that_ruin_least_squares(tmp_path):
    """The DIP prior honours --solver mom (it used to fall back to least squares silently). An 8-channel DIP
    (a mask artifact's round 0) shows it as the full net does, at a tenth of the time."""
    narrow = make_mask(tmp_path / "narrow.safetensors", rounds=1)
    torch.manual_seed(0)
    clean = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 0.2 + 0.4
    op = GaussianCS((1, 16, 16), 200, outliers=4, noise=0.01, seed=1)
    y = op(clean, torch.Generator().manual_seed(2))
    errors = {}
    for batch in (None, 10):
        img, rep = solve_dip(op, y, (1, 16, 16), clean, narrow, 0, 60, 0.01, 0, torch.device("cpu"),
                             mom_batch=batch)
        errors[batch] = rep["mse"]
    assert errors[10] < 0.5 * errors[None]  # measured 0.0044 against 0.25


def test_the_solver_is_reported_as_run(tmp_path):
    """--solver mom with the DIP prior runs MOM and says so; inpainting defaults to least squares."""
    from lipcli import images

    images.save_image(tmp_path / "x.png", images.from_tensor(torch.rand(1, 1, 16, 16)))
    rep = lip(tmp_path / "x.png", "--simulate", "--prior", "dip", "-m", "100", "--iters", "2", "-o", tmp_path / "o.png")
    assert rep["solver"] == "mom"
    rep = lip("mnist:0", "--simulate", "--task", "inpaint", "--iters", "2", "--restarts", "1", "-o", tmp_path / "i.png")
    assert rep["solver"] == "ls"


def test_a_diverged_cs_dip_writes_its_last_iterate_and_fails(tmp_path, monkeypatch):
    """As lip restore: the last iterate before the divergence is written, then exit 1 with one line."""
    from lipcli import images, restore
    from lipcli.fit import DivergenceError, FitResult, TargetResult

    last = torch.full((1, 1, 16, 16), 0.5)

    def diverge(*args, **kwargs):
        raise DivergenceError("the fit diverged", FitResult([TargetResult(last, last, 7)], 7, [1.0] * 7, 6, 0.1))

    monkeypatch.setattr(restore, "fit", diverge)
    images.save_image(tmp_path / "x.png", images.from_tensor(torch.rand(1, 1, 16, 16)))
    result = CliRunner().invoke(app, ["cs", str(tmp_path / "x.png"), "--simulate", "--prior", "dip", "-m", "50",
                                      "--iters", "3", *FAST, "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("lip: error: the fit diverged; the last iterate")
    assert (images.load_image(tmp_path / "o.png").pixels == 128 / 255).all()


def test_a_failed_write_of_cs_dip_keeps_the_fits_state(tmp_path, monkeypatch):
    """As lip restore: a write that fails after the fit (a full disk) keeps the fit's saved state beside the
    output (saved every millisecond here), and the same command writes the unfailed run's image from it."""
    import errno
    import os

    from PIL import Image as PILImage

    from lipcli import images

    images.save_image(tmp_path / "x.png", images.from_tensor(torch.rand(1, 1, 16, 16)))
    args = [tmp_path / "x.png", "--simulate", "--prior", "dip", "-m", "100", "--iters", "4", "--resume-every", "0.001"]
    lip(*args, "-o", tmp_path / "ref.png")
    out, state = tmp_path / "o.png", tmp_path / "o.png.lip-resume"

    def full_disk(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with monkeypatch.context() as mp:
        mp.setattr(PILImage.Image, "save", full_disk)
        failed = CliRunner().invoke(app, ["cs", *map(str, args), *FAST, "-o", str(out)])
    assert failed.exit_code == 1 and "disk is full" in failed.stderr, failed.output
    assert "the image was not written; the fit's state is kept" in failed.stderr
    assert (state / "fit-0.safetensors").is_file()
    assert lip(*args, "-o", out)["resumed_from"] > 0
    assert out.read_bytes() == (tmp_path / "ref.png").read_bytes() and not state.exists()

    with monkeypatch.context() as mp:  # a state kept again, then the same command with other MOM batches
        mp.setattr(PILImage.Image, "save", full_disk)
        assert CliRunner().invoke(app, ["cs", *map(str, args), *FAST, "-o", str(out)]).exit_code == 1
    other = CliRunner().invoke(app, ["cs", *map(str, args), "--mom-batch", "40", *FAST, "-o", str(out), "--json"])
    assert other.exit_code == 0 and "another fit" in other.stderr, other.output  # it continued it: two objectives
    assert "resumed_from" not in json.loads(other.stdout)


def test_cs_dip_keeps_the_inputs_sample_type_and_alpha(tmp_path):
    """As lip restore --task cs: a 16-bit input gives a 16-bit result, an RGBA one keeps its alpha."""
    from lipcli import images
    rgba = np.random.default_rng(0).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    images.save_image(tmp_path / "g16.png", np.random.default_rng(1).random((1, 16, 16), np.float32),
                      stored=images.UINT16)
    for name in ("rgba.png", "g16.png"):
        result = CliRunner().invoke(app, ["cs", str(tmp_path / name), "--simulate", "--prior", "dip", "-m", "50",
                                          "--iters", "2", *FAST, "-o", str(tmp_path / f"out-{name}")])
        assert result.exit_code == 0, result.output
        with PILImage.open(tmp_path / name) as src, PILImage.open(tmp_path / f"out-{name}") as im:
            mode = src.mode  # RGBA; 16-bit gray opens as I;16 (as I under Pillow 10.0)
            assert im.mode == mode and mode in ("RGBA", "I;16", "I")
            if mode == "RGBA":
                assert np.array_equal(np.asarray(im)[..., 3], rgba[..., 3])


def test_cs_says_before_the_fit_what_its_output_will_not_keep(tmp_path):
    """As lip restore: a JPEG drops alpha and detail, an .npy (float pixels alone) the alpha; a PNG keeps all."""
    rgba = np.random.default_rng(0).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    notes = {}
    for out in ("o.jpg", "o.npy", "o.png"):
        result = CliRunner().invoke(app, ["cs", str(tmp_path / "rgba.png"), "--simulate", "--prior", "dip", "-m", "50",
                                          "--iters", "1", *FAST, "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
        notes[out] = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert "transparency (JPEG has none); detail (JPEG is lossy" in notes["o.jpg"][0]
    assert "transparency (lip cs writes an .npy of the pixels alone)" in notes["o.npy"][0]
    assert notes["o.png"] == []
