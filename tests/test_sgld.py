"""SGLD-DIP (`--sgld`): Langevin weight noise in the one fitting loop, and the setting's way from the
command line, the API and YAML into every fit (restore, IMP rounds of prune, transfer); also where the other
loop knobs (--weight-decay, --es-spike, --jump-factor) show in the help and the report."""
from __future__ import annotations

import json

import math
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lipcli import api, artifact, nets
from lipcli import restore as restore_mod
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli import fit as fit_mod
from lipcli.fit import FitConfig, fit, jitter_std
from lipcli.prune import imp as imp_mod
from conftest import tiny_spec
from prune_helpers import FitSpy, isolated_folder
from test_fit import FlakyDenoise, _random_masks, make_run

CPU = torch.device("cpu")


def freeze_gradients(net: torch.nn.Module) -> None:
    """Every gradient reads 0, so Adam does not move a weight and any change is the SGLD noise."""
    for p in net.parameters():
        p.register_hook(torch.zeros_like)


# ---------------------------------------------------------------- the loop

def test_sgld_noise_has_the_published_scale_on_conv_kernels_only(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    freeze_gradients(net)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    lr, sgld, steps = 0.01, 3.0, 4
    fit(net, [target], FitConfig(iters=steps, lr=lr, sgld=sgld, early_stop=False))
    kernels = set(nets.conv_weight_names(net))
    change = torch.cat([(p.detach() - before[n]).flatten() for n, p in net.named_parameters() if n in kernels])
    expected = sgld * lr * math.sqrt(steps)  # independent N(0, (sgld*lr)^2) per step
    assert change.numel() > 5000
    assert abs(change.std().item() / expected - 1) < 0.05
    assert abs(change.mean().item()) < 0.05 * expected
    for n, p in net.named_parameters():  # biases and BatchNorm: no noise, no gradient step
        if p.dim() != 4:
            assert torch.equal(p.detach(), before[n]), n
    assert kernels == {n for n, p in net.named_parameters() if p.dim() == 4}


@pytest.mark.parametrize("knob", [{"sgld": 5.0}, {"weight_decay": 3.0}])  # the decay: tests/test_weight_decay.py
def test_masked_weights_stay_exactly_zero_under_sgld_or_decay_and_rollback(rgb32, knob):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, bad_calls={15, 27})
    masks = _random_masks(net, keep=0.3, seed=1)
    result = fit(net, [target], FitConfig(iters=30, lr=0.05, early_stop=False, **knob), masks=masks)
    assert result.recoveries == 2
    params = dict(net.named_parameters())
    for name, keep in masks.items():
        assert (params[name].detach()[~keep] == 0).all(), f"{name} has non-zero pruned weights"


def test_pruned_weights_get_no_noise_and_kept_ones_the_full_scale(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    freeze_gradients(net)
    masks = _random_masks(net, keep=0.5, seed=2)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    fit(net, [target], FitConfig(iters=1, lr=0.01, sgld=2.0, early_stop=False), masks=masks)
    params = dict(net.named_parameters())
    kept = torch.cat([(params[n].detach() - before[n])[m] for n, m in masks.items()])
    assert all((params[n].detach()[~m] == 0).all() for n, m in masks.items())
    assert abs(kept.std().item() / 0.02 - 1) < 0.05


def test_sgld_is_seeded_and_starts_after_the_first_step(rgb32):
    def run(sgld: float, seed: int = 0):
        net, target, _ = make_run(tiny_spec(), rgb32)
        return fit(net, [target], FitConfig(iters=8, sgld=sgld, seed=seed, early_stop=False))

    a, b, c, plain = run(2.0), run(2.0), run(2.0, seed=1), run(0.0)
    assert torch.equal(a.targets[0].final, b.targets[0].final) and a.losses == b.losses
    assert not torch.equal(a.targets[0].final, c.targets[0].final)
    # The noise comes after the step, on its own stream: the first loss is the plain run's, then they part.
    assert a.losses[0] == plain.losses[0] and a.losses[1:] != plain.losses[1:]


def test_negative_sgld_is_refused_by_the_loop(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    with pytest.raises(ValueError, match="sgld"):
        fit(net, [target], FitConfig(iters=1, sgld=-1.0))


def test_off_is_not_recorded_so_old_artifacts_and_rows_still_match():
    off, on, later = FitConfig(), FitConfig(sgld=2.0), ("data_consistency", "es_white", "weight_decay", "es_spike",
                                                     "es_close", "reg_noise_every")
    assert off.recorded() == {k: v for k, v in asdict(off).items() if k not in ("sgld", *later)}
    assert on.recorded() == {k: v for k, v in asdict(on).items() if k not in later}


# ---------------------------------------------------------------- settings: flags, YAML, API

@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    return isolated_folder(tmp_path, monkeypatch)


def lip(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


RUN = ["--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--iters", "2"]


@pytest.mark.parametrize("command,flag", [(c, "--sgld") for c in ("restore", "prune", "transfer")]
                         + [(c, f) for c in ("restore", "transfer") for f in ("--weight-decay", "--es-spike",
                                                                              "--es-close", "--jump-factor",
                                                                              "--reg-noise-every")])
def test_the_knob_is_in_the_help_of_every_command_that_fits_with_it(command, flag):
    result = lip(command, "--help")
    assert result.exit_code == 0 and flag in result.output


@pytest.mark.parametrize("flag,key,value", [("--es-spike", "es_spike", 1.5), ("--jump-factor", "jump_factor", 2.5),
                                              ("--es-close", "es_close", 0.015), ("--reg-noise-every", "reg_noise_every",
                                                                                  500)])
def test_restore_reports_the_knob(work, flag, key, value):
    result = lip("restore", "img.png", "--simulate", *RUN, flag, str(value), "-o", "out.png", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[key] == value


@pytest.mark.parametrize("key,in_file,flag,bad,refusal", [
    ("sgld", 1.5, 0.5, -1, "--sgld -1"),
    ("weight_decay", 0.5, 0.1, 200, "--weight-decay 200 x --lr 0.01 must be below 1"),  # tests/test_weight_decay.py
    ("reg_noise_every", 500, 100, -1, "--reg-noise-every -1"),
])
def test_yaml_key_and_flag_reach_the_fit_config(work, key, in_file, flag, bad, refusal):
    (work / "s.yaml").write_text((work / "narrow.yaml").read_text() + f"{key}: {in_file}\n")
    assert getattr(api.restorer(config="narrow.yaml", device="cpu").cfg, key) == 0.0
    assert getattr(api.restorer(config="s.yaml", device="cpu").cfg, key) == in_file
    assert getattr(api.restorer(config="s.yaml", device="cpu", **{key: flag}).cfg, key) == flag  # the flag wins
    with pytest.raises(LipError, match=refusal):
        api.restorer(config="narrow.yaml", device="cpu", **{key: bad})


def test_restore_fits_with_the_flag(work, monkeypatch):
    seen = []
    monkeypatch.setattr(restore_mod, "fit", lambda model, targets, cfg, **kw: seen.append(cfg) or
                        fit(model, targets, cfg, **kw))
    result = lip("restore", "img.png", "--simulate", *RUN, "--sgld", "2", "-o", "out.png", "--json")
    assert result.exit_code == 0, result.output
    assert [c.sgld for c in seen] == [2.0]
    assert json.loads(result.stdout)["sgld"] == 2.0  # the report says so (a fit without it records no sgld)


def test_imp_rounds_are_fitted_with_sgld_and_the_artifact_says_so(work, monkeypatch):
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    result = lip("prune", "img.png", "--simulate", *RUN, "--rounds", "1", "--sgld", "2", "-o", "a.safetensors")
    assert result.exit_code == 0, result.output
    assert [c["cfg"].sgld for c in spy.calls] == [2.0, 2.0]  # the dense round and round 1
    assert artifact.load(work / "a.safetensors").meta["search"]["fit"]["sgld"] == 2.0
    result = lip("prune", "img.png", "--simulate", *RUN, "--rounds", "1", "-o", "b.safetensors")
    assert "sgld" not in artifact.load(work / "b.safetensors").meta["search"]["fit"]


@pytest.mark.parametrize("key,value", [("sgld", 2.0), ("weight_decay", 0.2), ("reg_noise_every", 500)])
def test_transfer_grid_fits_and_keys_its_rows_with_the_knob(work, key, value):
    art = api.prune(["img.png"], simulate=True, config="narrow.yaml", device="cpu", iters=2, rounds=1)
    api.save_mask(work / "m.safetensors", art)
    grids = [api.transfer_grid(["img.png"], ["m.safetensors"], config="narrow.yaml", device="cpu", **flags)
             for flags in ({}, {key: value})]
    plain, changed = ({c: g.identity(c) for c in g.cells()} for g in grids)
    assert getattr(grids[1].configs["denoise"], key) == value
    assert all(key not in i["fit"] for i in plain.values())  # off is not recorded: older rows still match
    assert all(i["fit"][key] == value for i in changed.values())


def test_the_jitter_decays_as_the_deep_decoders_code_decays_it(monkeypatch, rgb32):
    """x0.7 before the draw at every multiple of the period, iteration 0 included (their inpainting demo: 0.005
    every 500); without a period the std is --reg-noise throughout."""
    cfg = FitConfig(reg_noise=0.005, reg_noise_every=500)
    assert [jitter_std(cfg, it) for it in (0, 499, 500, 1000)] == pytest.approx([0.0035, 0.0035, 0.00245, 0.001715])
    assert jitter_std(FitConfig(reg_noise=0.005), 10_000) == 0.005
    drawn = []
    monkeypatch.setattr(fit_mod, "jittered", lambda z, std, gen: drawn.append(std) or z)
    net, target, _ = make_run(tiny_spec(), rgb32)
    fit(net, [target], replace(cfg, iters=5, reg_noise_every=2, early_stop=False))
    assert drawn == pytest.approx([0.005 * 0.7 ** k for k in (1, 1, 2, 2, 3)])
