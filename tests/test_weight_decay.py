"""Decoupled weight decay of the conv kernels (`--weight-decay`): what the loop does with it, and the setting's
way from the command line, YAML, the API and the default ticket's library entry into every fit."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from lipcli import api, library
from lipcli.config import at_level
from lipcli.fit import FitConfig, fit
from conftest import tiny_spec
from prune_helpers import isolated_folder
from test_fit import make_run
from test_sgld import lip


# ---------------------------------------------------------------- the loop

def fitted(rgb32, cfg: FitConfig) -> dict[str, torch.Tensor]:
    """The parameters after fitting the same seeded tiny net to the same target with `cfg`."""
    net, target, _ = make_run(tiny_spec(), rgb32)
    fit(net, [target], cfg)
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def test_one_step_shrinks_each_kernel_by_lr_times_decay_and_nothing_else(rgb32):
    lr, decay = 0.01, 5.0
    plain = fitted(rgb32, FitConfig(iters=1, lr=lr, early_stop=False))
    decayed = fitted(rgb32, FitConfig(iters=1, lr=lr, weight_decay=decay, early_stop=False))
    for name, p in decayed.items():
        if p.dim() == 4:  # the step is Adam's as without decay, then the kernel shrinks
            torch.testing.assert_close(p, plain[name] * (1 - lr * decay), rtol=1e-6, atol=0)
        else:  # biases and BatchNorm: scale-sensitive, left alone
            assert torch.equal(p, plain[name]), name


def test_kernels_stay_smaller_over_a_run_than_without_decay(rgb32):
    plain = fitted(rgb32, FitConfig(iters=40, early_stop=False))
    decayed = fitted(rgb32, FitConfig(iters=40, weight_decay=2.0, early_stop=False))
    for name in (n for n, p in plain.items() if p.dim() == 4):
        assert decayed[name].norm() < plain[name].norm(), name


def test_the_loop_refuses_a_step_that_would_take_a_whole_kernel(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    with pytest.raises(ValueError, match="weight_decay"):
        fit(net, [target], FitConfig(iters=1, lr=0.01, weight_decay=100.0))


def test_off_is_not_recorded_so_old_artifacts_rows_and_saved_fits_still_match():
    off, on = FitConfig(), FitConfig(weight_decay=0.2)
    assert "weight_decay" not in off.recorded()
    assert on.recorded()["weight_decay"] == 0.2
    assert {k: v for k, v in on.recorded().items() if k != "weight_decay"} == off.recorded()
    assert set(asdict(off)) - set(off.recorded()) == {"sgld", "data_consistency", "es_white", "weight_decay",
                                                    "es_spike", "es_close", "reg_noise_every"}


# ---------------------------------------------------------------- settings: flags, the API, the library
# (the help, a YAML key, transfer grids and masked weights under rollback: tests/test_sgld.py, for both knobs)

def test_the_default_ticket_is_fitted_with_its_entrys_decay_and_the_dense_net_without(tmp_path, monkeypatch):
    isolated_folder(tmp_path, monkeypatch)
    own = library.fast_settings("dip-channel-house", "fast", "denoise", named=True)["weight_decay"]
    assert at_level("weight_decay", own, 50.0) == 0  # measured to cost PSNR
    assert at_level("weight_decay", own, 10.0) == 0  # at sigma 10, 0.1 missed its mark (RESULTS-weight-decay.md)
    assert at_level("weight_decay", own, 15.0) == 0.1  # 0.2 lost on the report crops there, 0.1 did not
    assert at_level("weight_decay", own, 25.0) == 0.2
    simulated = {"device": "cpu", "iters": 2, "simulate": True, "sigma": 25}
    ticket = api.restorer(**simulated)
    problem = ticket.problem("img.png")  # the blind estimate reads about 25, where the entry decays
    assert ticket.config(problem).weight_decay == at_level("weight_decay", own, problem.noise_sigma()) > 0
    assert api.restorer(**simulated, dense=True).config(problem).weight_decay == 0
    assert api.restorer(**simulated, weight_decay=0).config(problem).weight_decay == 0
    assert api.restorer(**simulated, config="paper").config(problem).weight_decay == 0


def test_restore_reports_the_decay_it_fitted_with(tmp_path, monkeypatch):
    isolated_folder(tmp_path, monkeypatch)
    result = lip("restore", "img.png", "--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--iters",
                 "2", "--weight-decay", "0.3", "-o", "out.png", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["weight_decay"] == 0.3
