"""`lip restore --ensemble N` (lipcli/ensemble.py): N seeded restores, averaged, and what it reports."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from conftest import tiny_spec
from lipcli import api, config
from lipcli.cli import app
from lipcli.ensemble import restore_ensemble
from lipcli.errors import LipError
from lipcli.fit import FitConfig
from lipcli.problem import load_problem
from lipcli.restore import Prior, restore

CPU = torch.device("cpu")
CFG = FitConfig(iters=12, es_window=4, es_patience=3, precision="fp32", seed=5)


def _problem(path):
    settings = config.resolve("denoise", "fast", "fast", {"precision": "fp32"})
    return load_problem(path, "denoise", settings, simulate=True, seed=0)


def test_the_ensemble_is_the_mean_of_seeded_restores(rgb64_path):
    problem, prior = _problem(rgb64_path), Prior(spec=tiny_spec())
    merged, report = restore_ensemble(problem, prior, CFG, CPU, seed=5, n=3)
    singles = [restore(problem, prior, replace(CFG, seed=s), CPU, s)[0].targets[0] for s in (5, 6, 7)]
    assert torch.equal(merged.targets[0].stopped, torch.stack([t.stopped for t in singles]).mean(0))
    assert torch.equal(merged.targets[0].final, torch.stack([t.final for t in singles]).mean(0))
    assert not torch.equal(singles[0].stopped, singles[1].stopped)  # the seed moves init, code and jitter
    assert [m["seed"] for m in report["members"]] == [5, 6, 7] and report["ensemble"] == 3
    assert [m["stopped_at"] for m in report["members"]] == [t.stopped_at for t in singles]
    assert report["iterations"] == merged.iterations == sum(m["iterations"] for m in report["members"])
    assert report["psnr_stopped"] == problem.scores(merged.targets[0].stopped)["psnr"]
    # Averaging never raises the squared error above the members' mean (Jensen; outputs lie in [0, 1]).
    mse = [10 ** (-m["psnr_stopped"] / 10) for m in report["members"]]
    assert 10 ** (-report["psnr_stopped"] / 10) <= sum(mse) / len(mse)
    assert report["oracle_best_psnr"] is None  # the oracle is one run's best iterate: per member only


def test_cli_ensemble_report_and_noise_estimate(workdir):
    out = workdir / "ens.png"
    result = CliRunner().invoke(app, ["restore", str(workdir / "rgb.png"), "--simulate", "--sigma", "50", "--json",
                                      "--ensemble", "2", "--iters", "6", "--config", "fast", "--precision", "fp32",
                                      "--prior", "deep-decoder", "--dd-k", "16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ensemble"] == 2 and len(report["members"]) == 2 and report["iterations"] == 12
    assert 0.85 <= report["sigma_estimated"] / 50 <= 1.05  # tests/test_noise_estimate.py's tolerance
    assert "their average" in result.stderr and "noise sigma ~" in result.stderr and out.exists()


def test_cli_single_restore_reports_ensemble_1_and_no_sigma_for_sr(workdir):
    result = CliRunner().invoke(app, ["restore", str(workdir / "rgb.png"), "--simulate", "--task", "sr", "--json",
                                      "--iters", "3", "--config", "fast", "--precision", "fp32",
                                      "--prior", "deep-decoder", "--dd-k", "16", "-o", str(workdir / "sr.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ensemble"] == 1 and "members" not in report and report["sigma_estimated"] is None



def test_api_ensemble(rgb64_path):
    """The Python API takes the same option; a bad count is a one-line LipError."""
    done = api.restore(rgb64_path, simulate=True, ensemble=2, iters=3, prior="deep-decoder", dd_k=16,
                       precision="fp32", config="fast", device="cpu")
    assert done.report["ensemble"] == 2 and [m["seed"] for m in done.report["members"]] == [0, 1]
    with pytest.raises(LipError, match="--ensemble 0"):
        api.restorer(ensemble=0)
