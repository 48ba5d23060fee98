"""Other papers' protocols as presets (issue 14, items 4 and 6): `--config oes` (Optimal Eye Surgeon,
anchors-spec c.1-c.3) and `--config deep-decoder` (Heckel & Hand, anchors-spec d). Each resolves to
exactly the published settings for every task, flags and YAML values still override it, and both
commands reach it (a tiny OES net through a YAML `preset: oes`, the named preset on its mask)."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lipcli import api, artifact, config, nets
from lipcli.errors import LipError
from lipcli.cli import app
from lipcli.physics import TASKS
from prune_helpers import write_picture

CPU = torch.device("cpu")
OES = dict(net="oes", scope="all", target_sparsity=0.95, search_iters=60_000, iters=40_000, lr=0.01,
           reg_noise=0.0, ema=0.0, early_stop=False, ticket=None, preset="oes")
DEEP_DECODER = dict(net="deep-decoder", iters=1900, lr=0.01, reg_noise=0.0, ema=0.0, early_stop=False, ticket=None,
                    preset="deep-decoder")
TINY_OES = "preset: oes\nnet: {preset: oes, down: [4, 8, 8], up: [4, 8, 8], skip: [0, 0, 0]}\n"


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("name, expected", [("oes", OES), ("deep-decoder", DEEP_DECODER)])
def test_a_protocol_resolves_to_its_papers_settings_for_every_task(name, expected, task):
    settings = config.resolve(task, name, "fast", {})
    assert {k: settings[k] for k in expected} == expected
    assert settings["precision"] == "fp32"  # on top of the paper preset, not the fast one


def test_flags_and_yaml_override_a_protocol(tmp_path):
    flags = dict(iters=500, reg_noise=0.03, early_stop=True, scope="conv", target_sparsity=0.965, lr=None)
    settings = config.resolve("denoise", "oes", "fast", flags)
    assert (settings["iters"], settings["reg_noise"], settings["early_stop"], settings["scope"],
            settings["target_sparsity"], settings["lr"]) == (500, 0.03, True, "conv", 0.965, 0.01)
    (tmp_path / "mine.yaml").write_text("preset: oes\nsearch_iters: 2000\nema: 0.99\n")
    settings = config.resolve("denoise", str(tmp_path / "mine.yaml"), "fast", {"ema": 0.9})
    assert (settings["search_iters"], settings["ema"], settings["net"], settings["preset"]) == (2000, 0.9, "oes", "oes")
    assert not config.resolve("denoise", "paper", "fast", {})["target_sparsity"]
    assert config.resolve("denoise", "fast", "fast", {})["scope"] == "conv"


def test_a_yaml_iters_is_what_prune_iters_is_unless_the_file_sets_search_iters(tmp_path):
    """`iters: N` in a config and `lip prune --iters N` mean the same search (the key was read by restore only,
    so a prune silently ran the preset's rounds); a file's own search_iters and a flag still decide."""
    img = write_picture(tmp_path / "img.png", 32, 32)
    (tmp_path / "a.yaml").write_text("iters: 40\n")
    (tmp_path / "b.yaml").write_text("iters: 40\nsearch_iters: 30\n")
    assert api.pruner([img], config=str(tmp_path / "a.yaml"), device=CPU).request.fit.iters == 40
    assert api.pruner([img], config=str(tmp_path / "b.yaml"), device=CPU).request.fit.iters == 30
    assert api.pruner([img], config=str(tmp_path / "a.yaml"), device=CPU, iters=20).request.fit.iters == 20
    assert config.resolve("denoise", str(tmp_path / "a.yaml"), "fast", {})["iters"] == 40  # a restore's too


def test_rounds_given_as_a_flag_win_over_a_configs_target(tmp_path):
    """Flags override a config: --rounds beside a YAML target_sparsity was refused as ignored (naming the preset's
    target); now the flag decides. Beside --target-sparsity, a flag too, it is still refused."""
    img = write_picture(tmp_path / "img.png", 32, 32)
    (tmp_path / "t.yaml").write_text("target_sparsity: 0.8\n")
    req = api.pruner([img], config=str(tmp_path / "t.yaml"), device=CPU, rounds=2).request
    assert (req.rounds, req.target_sparsity) == (2, None)
    with pytest.raises(LipError, match="--rounds 2 would be ignored: --target-sparsity 0.8"):
        api.pruner([img], device=CPU, rounds=2, target_sparsity=0.8)


def test_prune_under_the_oes_protocol_learns_its_mask_with_its_settings(tmp_path):
    img = write_picture(tmp_path / "img.png", 32, 32)
    req = api.pruner([img], method="oes", config="oes", device=CPU).request
    assert (req.net, req.scope, req.target_sparsity, req.fit.iters, req.fit.lr, req.oes_tau, req.oes_lambda) == \
        ("oes", "all", 0.95, 60_000, 0.01, 0.2, 1e-9)
    assert (req.fit.reg_noise, req.fit.ema, req.fit.early_stop) == (0.0, 0.0, False)
    mine = api.pruner([img], method="oes", config="oes", device=CPU, iters=50, scope="conv",
                      target_sparsity=0.9, lr=0.001).request
    assert (mine.scope, mine.target_sparsity, mine.fit.iters, mine.fit.lr) == ("conv", 0.9, 50, 0.001)
    assert api.pruner([img], method="oes", config="fast", device=CPU).request.scope == "conv"  # lip's default


def test_restore_under_the_protocols(tmp_path):
    job = api.restorer(config="oes", device=CPU)
    assert job.prior.spec == nets.preset("oes") and job.prior.spec["pool_at"] == "conv"
    cfg = job.cfg
    assert (cfg.iters, cfg.lr, cfg.reg_noise, cfg.ema, cfg.early_stop) == (40_000, 0.01, 0.0, 0.0, False)
    cfg = api.restorer(config="oes", device=CPU, early_stop=True, iters=7, ema=0.5).cfg
    assert (cfg.iters, cfg.ema, cfg.early_stop) == (7, 0.5, True)
    assert api.restorer(config="fast", device=CPU).cfg.early_stop  # the others still stop automatically
    dd = api.restorer(config="deep-decoder", device=CPU)
    assert dd.prior.spec == nets.preset("deep-decoder") and dd.prior.spec["k"] == 128
    assert (dd.cfg.iters, dd.cfg.lr, dd.cfg.reg_noise, dd.cfg.ema, dd.cfg.early_stop) == (1900, 0.01, 0, 0, False)
    assert api.restorer(config="deep-decoder", prior="deep-decoder", dd_k=64, device=CPU).prior.spec["k"] == 64
    # --dd-k sets the width however the deep decoder is asked for, and is refused where none is fitted
    for how in ({"config": "deep-decoder"}, {"net": "deep-decoder"}):
        assert api.restorer(dd_k=64, device=CPU, **how).prior.spec["k"] == 64
    for how in ({}, {"net": "dip"}):
        with pytest.raises(LipError, match="--dd-k 64 sets the deep decoder's width"):
            api.restorer(dd_k=64, device=CPU, **how)
    # today's DIP-style settings for --prior deep-decoder stay what they were
    plain = api.restorer(config="paper", prior="deep-decoder", device=CPU)
    assert (plain.cfg.iters, plain.cfg.reg_noise, plain.cfg.ema, plain.cfg.early_stop) == (3000, 1 / 30, 0.99, True)


def lip(*args: object) -> dict:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_both_commands_reach_the_oes_protocol(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_picture(tmp_path / "img.png", 24, 24)
    (tmp_path / "oes.yaml").write_text(TINY_OES)
    done = lip("prune", "img.png", "--simulate", "--method", "oes", "--config", "oes.yaml", "--iters", "3",
               "--device", "cpu", "--threads", "1", "-o", "m.safetensors", "--json")
    art = artifact.load(tmp_path / "m.safetensors")
    assert done["rounds"][-1]["sparsity"] == pytest.approx(0.95, abs=1e-3)
    assert art.meta["search"]["scope"] == "all" and art.meta["preset"] == "oes"
    assert set(art.prune_round) == {n for n, _ in nets.build(art.spec).named_parameters()}
    report = lip("restore", "img.png", "--simulate", "--config", "oes", "--mask", "m.safetensors", "--iters", "4",
                 "--device", "cpu", "--threads", "1", "-o", "out.png", "--json")
    assert (report["preset"], report["early_stop"], report["iterations"]) == ("oes", False, 4)
    again = lip("restore", "img.png", "--simulate", "--config", "oes", "--mask", "m.safetensors", "--iters", "4",
                "--early-stop", "--device", "cpu", "--threads", "1", "-o", "out.png", "--json")
    assert again["early_stop"] is True


def test_transfer_follows_the_protocols_early_stop(tmp_path):
    """OES reports the last iterate, so a transfer grid under --config oes must not stop early either."""
    img = write_picture(tmp_path / "img.png", 24, 24)
    (tmp_path / "oes.yaml").write_text(TINY_OES)
    api.prune([img], out=tmp_path / "m.safetensors", method="oes", config=str(tmp_path / "oes.yaml"), iters=3,
              simulate=True, device=CPU)
    grids = {flag: api.transfer_grid([img], [tmp_path / "m.safetensors"], config=str(tmp_path / "oes.yaml"),
                                     early_stop=flag, iters=4, device=CPU) for flag in (None, True)}
    assert not grids[None].configs["denoise"].early_stop  # the protocol's
    assert grids[True].configs["denoise"].early_stop  # the flag's
    assert api.transfer_grid([img], [tmp_path / "m.safetensors"], config="fast", iters=4,
                             device=CPU).configs["denoise"].early_stop
