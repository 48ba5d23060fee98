"""Compressive sensing as a registered task (issue 13): `lip restore`, `lip prune` and `lip transfer` take
`--task cs` / `--tasks cs1000`, read the same measurements files as `lip cs`, fit the Median-of-Means loss
by default, and `lip restore --task cs` reconstructs what `lip cs --prior dip` does, bit for bit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lipcli import artifact, images
from lipcli.cli import app
from lipcli.physics import TASKS, GaussianCS, MedianOfMeans
from lipcli.problem import load_problem

RUN = ["--device", "cpu", "--threads", "1", "--seed", "0"]
# lip cs --prior dip's fitting (reg-noise 1/30, no average: the task's defaults), without the early stop
AS_CS = ["--precision", "fp32", "--no-early-stop"]


def lip(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def rgb16(tmp_path: Path) -> Path:
    path = tmp_path / "x.png"
    images.save_image(path, images.from_tensor(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))))
    return path


def test_restore_cs_is_lip_cs_dip_simulated_and_from_files(rgb16: Path, tmp_path: Path):
    """The same problem through both commands: the same output bytes, simulated and read back from files."""
    common = ["-m", "300", "--outliers", "6", "--operator", "gaussian", "--iters", "4", *RUN]
    lip("cs", rgb16, "--simulate", "--prior", "dip", *common, "--save-measurements", tmp_path / "meas",
        "-o", tmp_path / "cs.png")
    rep = json.loads(lip("restore", "--task", "cs", rgb16, "--simulate", *common, *AS_CS, "-o", tmp_path / "r.png",
                         "--json"))
    assert (tmp_path / "cs.png").read_bytes() == (tmp_path / "r.png").read_bytes()
    assert rep["task"] == "cs" and rep["operator"]["loss"] == "mom" and rep["operator"]["outliers"] == 6
    assert rep["psnr_final"] is not None

    files = [tmp_path / "meas" / "y.npy", "--operator", tmp_path / "meas" / "operator.yaml", "--iters", "4", *RUN]
    lip("cs", *files, "--prior", "dip", "-o", tmp_path / "cs.npy")
    rep = json.loads(lip("restore", "--task", "cs", *files, *AS_CS, "--clean", rgb16, "-o", tmp_path / "r.npy",
                         "--json"))
    got = np.load(tmp_path / "r.npy")
    assert got.shape == (16, 16, 3) and got.dtype == np.float32
    assert np.array_equal(got, np.load(tmp_path / "cs.npy"))
    assert rep["operator"]["outliers"] == 6 and rep["psnr_final"] is not None  # the operator file's


def test_restore_cs_reads_a_matrix_and_refuses_flags_of_simulations(tmp_path: Path):
    """y.npy + A.npy + --shape for a gray image: a gray float image comes back; --solver ls fits the mean."""
    clean = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    op = GaussianCS((1, 16, 16), 120, seed=2)
    np.save(tmp_path / "A.npy", op.matrix.numpy())
    np.save(tmp_path / "y.npy", op.A(clean)[0].numpy())
    rep = json.loads(lip("restore", "--task", "cs", tmp_path / "y.npy", "--matrix", tmp_path / "A.npy", "--shape",
                         "16,16", "--solver", "ls", "--iters", "3", *RUN, "-o", tmp_path / "x.npy", "--json"))
    assert np.load(tmp_path / "x.npy").shape == (16, 16) and "loss" not in rep["operator"]
    result = CliRunner().invoke(app, ["restore", "--task", "cs", str(tmp_path / "y.npy"), "--matrix",
                                      str(tmp_path / "A.npy"), "--shape", "16,16", "--outliers", "2", *RUN])
    assert result.exit_code == 2 and "--outliers describes simulated measurements" in result.stderr


def test_a_gray_image_is_measured_once_and_scored_on_the_channel_mean(tmp_path: Path):
    """The net's three channels stand for a gray image by their mean: the operator measures that mean."""
    path = tmp_path / "g.png"
    images.save_image(path, images.from_tensor(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(3))))
    p = load_problem(path, "cs", {**TASKS.get("cs").options, "measurements": 100}, simulate=True, seed=0)
    assert p.gray and p.y.shape == (1, 100) and isinstance(p.op, MedianOfMeans)
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(p.op.A(x), p.op.A(x.mean(dim=1, keepdim=True).expand(1, 3, 16, 16)))
    spread = p.clean + torch.tensor([0.2, -0.2, 0.0]).view(1, 3, 1, 1)  # other channels, the same mean
    assert p.metric(spread, p.clean) > 60 and p.scores(spread)["psnr"] > 60


def test_prune_and_transfer_on_cs(tmp_path: Path):
    """A ticket searched on CS measurements (the loss sees y only), evaluated on the cs1000 grid task."""
    path = tmp_path / "x32.png"
    images.save_image(path, images.from_tensor(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))))
    lip("prune", "--task", "cs", path, "--simulate", "-m", "500", "--rounds", "1", "--iters", "3", *RUN,
        "-o", tmp_path / "t.safetensors")
    art = artifact.load(tmp_path / "t.safetensors")
    assert art.rounds == 1 and art.meta["operator"]["name"] == "cs"
    lip("transfer", path, "--mask", tmp_path / "t.safetensors", "--tasks", "cs1000", "--rounds", "1",
        "--baselines", "none", "--iters", "3", *RUN, "--out", tmp_path / "res")
    rows = [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["task"] == "cs1000"
    assert rows[0]["settings"]["degradation"]["measurements"] == 1000 and rows[0]["operator"]["measurements"] == 1000


def test_a_gray_image_gets_one_answer_from_lip_cs_and_restore(tmp_path: Path):
    """`lip cs --prior dip` fits a gray image as `lip restore` fits every gray image (three channels whose mean
    stands for it): the same bytes from both commands, a gray image back, and a mask searched on RGB serves."""
    gray = tmp_path / "g.png"
    images.save_image(gray, images.from_tensor(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(5))))
    common = ["-m", "100", "--outliers", "2", "--operator", "gaussian", "--iters", "3", *RUN]
    lip("cs", gray, "--simulate", "--prior", "dip", *common, "-o", tmp_path / "cs.png")
    lip("restore", "--task", "cs", gray, "--simulate", *common, *AS_CS, "-o", tmp_path / "r.png")
    assert (tmp_path / "cs.png").read_bytes() == (tmp_path / "r.png").read_bytes()
    assert images.load_image(tmp_path / "cs.png").pixels.shape[0] == 1
    rgb = tmp_path / "x.png"
    images.save_image(rgb, images.from_tensor(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(6))))
    lip("prune", "--task", "cs", rgb, "--simulate", "-m", "300", "--rounds", "1", "--iters", "2", *RUN,
        "-o", tmp_path / "t.safetensors")
    rep = json.loads(lip("cs", gray, "--simulate", "--prior", "dip", "--mask", tmp_path / "t.safetensors", *common,
                         "-o", tmp_path / "m.png", "--json"))
    assert rep["psnr"] is not None and images.load_image(tmp_path / "m.png").pixels.shape[0] == 1


def test_restore_cs_warns_of_outliers_in_half_the_batches_as_lip_cs_does(rgb16: Path, tmp_path: Path):
    """MedianOfMeans.warning, said before the fit by both commands (restore said nothing)."""
    warned = "150 outliers and only 10 MOM batches"
    for args in (["restore", rgb16, "--task", "cs", "--iters", "1", *AS_CS, "-o", tmp_path / "r.png"],
                 ["cs", rgb16, "--prior", "dip", "--iters", "1", "-o", tmp_path / "c.png"]):
        result = CliRunner().invoke(app, [str(a) for a in [*args, "--simulate", "-m", "200", "--outliers", "150",
                                                           *RUN]])
        assert result.exit_code == 0 and warned in result.stderr, result.output
    # The hint's flag exists for both (restore took mom_batch from a --config file only), and it is what helps
    for args in (["restore", rgb16, "--task", "cs", "--iters", "1", *AS_CS, "-o", tmp_path / "r.png"],
                 ["cs", rgb16, "--prior", "dip", "--iters", "1", "-o", tmp_path / "c.png"]):
        for batch, warned in ((20, True), (2, False)):  # 15 outliers: in 10 batches of 20, or 100 of 2
            result = CliRunner().invoke(app, [str(a) for a in [*args, "--simulate", "-m", "200", "--outliers", "15",
                                                               "--mom-batch", batch, "--json", *RUN]])
            assert result.exit_code == 0 and ("MOM batches" in result.stderr) == warned, result.output
            if args[0] == "restore":
                assert json.loads(result.stdout)["operator"]["mom_batch"] == batch
