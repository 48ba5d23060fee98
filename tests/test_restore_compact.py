"""`lip restore --compact`: fitting the channel-compacted net instead of the masked one.

How far the two fits agree, measured here on the tiny hourglass (64x64 denoising, fast preset,
30 iterations, a ticket with half the filters of every conv pruned whole):

* float64, BN betas away from 0: every iterate is the same (bit-equal after the loop's fp32 cast
  of the output). Compaction keeps trainable what the masked fit trains (a removed channel's BN
  beta, the weights that read it); freezing those instead moves the output by 2.6e-3 after one step.
* At a real ticket's theta0 every BN beta is 0, so a removed channel's BN output sits exactly on the
  kink of the LeakyReLU after it. That matters for the channels the head reads (other constants
  only shift a BN's input: their betas get no gradient). The compact net takes the slope at 0 (0.2);
  the masked net adds round-off to beta and takes 1 or 0.2 by its sign. That first gradient of the
  beta differs by up to 5x; Adam's first step is sign-like and barely differs, but its moments do,
  and from the second step the fits part (float64: 2e-5 at iteration 3, 3e-2 at 30). Every other
  gradient is the same.
* float32: a DIP fit is chaotic at the level of raw iterates: the masked net run in channels_last
  (same arithmetic, other rounding) differs from itself by 2e-2 after 10 iterations and 0.28 after
  30; --compact differs from the masked fit by about as much (7e-3, 0.22). The image `lip restore`
  writes (the 0.99 EMA) differs by 3.4e-3 after 30 iterations, vs 4.7e-3 for channels_last: the
  tolerance below, 2/255 on the 8-bit output, is that of a change of float evaluation order.
"""
from __future__ import annotations

import json
import numpy as np
import torch
from torch import nn

from lipcli import artifact, config, nets
from lipcli.artifact import Artifact
from lipcli.fit import FitConfig
from lipcli.masks import apply_masks
from lipcli.nets.compact import compact
from lipcli.problem import load_problem
from lipcli.restore import Prior, fitted_form, restore
from conftest import RGB64, tiny_spec
from test_artifact import make_artifact
from test_compact import grad_pairs
from test_cli_restore import FAST, json_report, lip, read

SPEC = tiny_spec()
CPU = torch.device("cpu")
CFG = FitConfig(iters=30, lr=0.01, reg_noise=1 / 30, ema=0.0, early_stop=False, precision="fp32")


def ticket(betas: float = 0.0, seed: int = 0) -> Artifact:
    """One round: half the filters of every conv but the head pruned whole, 30% of the rest at random.

    theta0 is a seeded init; `betas` > 0 draws the BN betas from N(0, betas^2), off the kink."""
    torch.manual_seed(seed)
    net = nets.build(SPEC)
    g = torch.Generator().manual_seed(seed + 1)
    if betas:
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.bias.normal_(0, betas, generator=g)
    params = dict(net.named_parameters())
    pruned = {}
    for n in nets.conv_weight_names(net):
        p = torch.rand(params[n].shape, generator=g) < 0.3
        if n != "head.weight":
            p[torch.randperm(p.shape[0], generator=g)[:p.shape[0] // 2]] = True
        pruned[n] = p.to(torch.uint8)
    meta = artifact.new_meta(SPEC, rounds=[{"round": 1, "rate": 0.5}], method="test")
    return Artifact(meta, {n: p.detach().clone() for n, p in params.items()}, pruned)


def prior(art: Artifact, compact_: bool) -> Prior:
    return Prior(SPEC, art.theta0, art.mask(1), compact=compact_)


def fit_iterates(p: Prior) -> tuple[list[torch.Tensor], dict]:
    """Every raw iterate of a 30-iteration denoising fit of the sample crop, and the report."""
    settings = config.resolve("denoise", "fast", "fast", {"precision": "fp32"})
    problem = load_problem(RGB64, "denoise", settings, simulate=True, seed=0)
    iterates: list[torch.Tensor] = []
    _, report = restore(problem, p, CFG, CPU, 0, [lambda s: iterates.append(s.raw[0].clone())])
    return iterates, report


def test_compact_fit_is_the_masked_fit_off_the_kink_in_float64():
    """Every trainable entry carried: the trajectories agree iterate by iterate. 1e-6 allows for
    the fp32 cast of outputs (an ulp is 6e-8); a parameter trained in one form and frozen in the
    other shows up at 1e-3 after one step."""
    art = ticket(betas=0.2)
    torch.set_default_dtype(torch.float64)
    try:
        plain, _ = fit_iterates(prior(art, False))
        small, report = fit_iterates(prior(art, True))
    finally:
        torch.set_default_dtype(torch.float32)
    assert report["compact"]["fitted"] == "compact"
    assert report["compact"]["params_after"] < report["compact"]["params_before"] == report["params"]
    assert len(plain) == len(small) == CFG.iters
    for k, (a, b) in enumerate(zip(plain, small), 1):
        assert (a - b).abs().max().item() <= 1e-6, k


def test_at_a_real_theta0_only_the_betas_on_the_leaky_relu_kink_differ():
    """Zero betas (as initialised): one float64 backward gives the same gradient for every entry of
    the compact net, except removed channels' betas before a LeakyReLU: there the masked net's is
    1 to 5 times the compact net's (slope 1 or 0.2, by the sign of round-off; only those the head
    reads have a gradient above round-off)."""
    art = ticket()
    masks = art.mask(1)
    torch.set_default_dtype(torch.float64)
    try:
        net = prior(art, False).build(0)
        apply_masks(net, masks)
        small = compact(net, masks)
        z = torch.rand(1, *net.input_shape(64, 64), generator=torch.Generator().manual_seed(0)) * 0.1
        y = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        ((net(z) - y) ** 2).mean().backward()
        ((small(z) - y) ** 2).mean().backward()
    finally:
        torch.set_default_dtype(torch.float32)
    atol = 1e-12 * max(p.grad.abs().max().item() for p in net.parameters())
    kinked = 0
    for cname, src, _, _, ours, g in grad_pairs(net, small, masks):
        if cname.endswith(".const_bias") and net.get_submodule(src.rsplit(".", 2)[0]).act:
            kinked += 1
            lo, hi = torch.minimum(ours, 5 * ours), torch.maximum(ours, 5 * ours)
            assert ((g >= lo - atol) & (g <= hi + atol)).all(), cname
        else:
            assert torch.allclose(ours, g, rtol=1e-7, atol=atol), cname
    assert kinked


def test_restore_compact_writes_the_same_image_in_fp32(workdir):
    """30 fp32 iterations, one thread, a real theta0: the written images agree within 2/255 (see the
    module docstring: a change of float evaluation order moves the masked fit as much)."""
    art = ticket()
    path = workdir / "ticket.safetensors"
    artifact.save(path, art)
    base = ["restore", workdir / "rgb.png", "--mask", path, "--simulate", "--json", "--iters", "30",
            "--no-early-stop", "--threads", "1", *FAST]
    plain = json_report(lip(*base, "--no-compact", "-o", workdir / "plain.png"))
    result = lip(*base, "-o", workdir / "small.png")  # the default: compact when whole filters are pruned
    small = json_report(result)
    r = small["compact"]
    assert r["fitted"] == "compact" and r["channels_removed"] > 0
    assert f"compacted: {r['params_before']:,} -> {r['params_after']:,} params" in result.stderr
    assert r["params_before"] == plain["params"] == small["params"] == nets.count_params(nets.build(SPEC))
    assert "compact" not in plain
    a, b = read(workdir / "plain.png")[2], read(workdir / "small.png")[2]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_restore_compact_with_nothing_to_compact_fits_the_masked_net(workdir):
    """A mask with no whole filter pruned: one stderr line, and exactly the plain masked fit."""
    path = workdir / "ticket.safetensors"
    artifact.save(path, make_artifact(SPEC, rounds=3))  # round 1 keeps 75% of weights, at random
    base = ["restore", workdir / "rgb.png", "--mask", path, "--round", "1", "--simulate", "--json",
            "--iters", "3", *FAST]
    default = lip(*base, "-o", workdir / "plain.png")
    plain = json_report(default)
    assert plain["compact"]["fitted"] == "masked" and "--compact" not in default.stderr  # nothing to say
    result = lip(*base, "--compact", "-o", workdir / "small.png")
    report = json_report(result)
    assert report["compact"]["fitted"] == "masked" and report["compact"]["channels_removed"] == 0
    notes = [line for line in result.stderr.splitlines() if "--compact" in line]
    assert notes == ["--compact: no filter is entirely pruned, nothing to compact; fitting the masked net"]
    assert report["psnr_final"] == plain["psnr_final"]
    assert np.array_equal(read(workdir / "plain.png")[2], read(workdir / "small.png")[2])


def test_compact_needs_a_mask(workdir):
    result = lip("restore", workdir / "rgb.png", "--compact", "--dense", "--iters", "2", *FAST)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "lip: error: --compact needs a masked net (--mask): the dense net has no pruned filters to remove"]


def test_compact_applies_to_the_default_ticket(workdir):
    """With no prior flag the CPU preset fits its shipped ticket, which --compact may name explicitly."""
    result = lip("restore", workdir / "rgb.png", "--compact", "--iters", "2", "--json", "-o", workdir / "d.png",
                 "--config", "fast", "--threads", "1")
    assert result.exit_code == 0, result.stderr
    assert json_report(result)["compact"]["fitted"] == "compact"


def test_only_the_skip_net_is_compacted():
    spec = nets.resolve_spec({"preset": "deep-decoder", "k": 8})
    net = nets.build(spec)
    p = Prior(spec, masks={}, compact=True)
    said: list[str] = []
    model, masks, form = fitted_form(net, p, said.append)
    assert model is net and masks == {} and form == {"compact": {"fitted": "masked"}}
    assert said == ["--compact: only the DIP skip net is compacted, not a 'decoder' net; fitting the masked net"]


def test_cs_dip_and_transfer_fit_a_filter_ticket_compacted(workdir):
    """Compaction is the default wherever a masked DIP is fitted: CS-DIP and transfer cells report it."""
    from lipcli import cs
    from lipcli.physics import GaussianCS

    path = workdir / "ticket.safetensors"
    artifact.save(path, ticket())
    op = GaussianCS((3, 16, 16), m=200, seed=0)
    y = op.A(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    said: list[str] = []
    _, rep = cs.solve_dip(op, y, (3, 16, 16), None, path, None, 2, 0.01, 0, torch.device("cpu"), notify=said.append)
    assert rep["compact"]["fitted"] == "compact" and any(line.startswith("compacted:") for line in said)
    rows = workdir / "res"
    lip("transfer", workdir / "rgb.png", "--mask", path, "--rounds", "1", "--baselines", "none", "--iters", "2",
        *FAST, "--out", rows)
    row = json.loads((rows / "results.jsonl").read_text().splitlines()[0])
    assert row["compact"]["fitted"] == "compact" and row["compact"]["channels_removed"] > 0


def test_a_mask_that_disconnects_the_net_is_warned_about():
    """A SNIP mask can empty a layer: the restore wrote a flat image without a word (compacted or not, in jobs)."""
    spec = tiny_spec()
    net = nets.build(spec, 0)
    dead = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in net.named_parameters() if n.endswith("conv.weight")}
    assert "disconnects the net" in Prior(spec=spec, masks=dead).warning
    kept = {n: m | True for n, m in dead.items()}
    cut = {**kept, "levels.0.up1x1.conv.weight": dead["levels.0.up1x1.conv.weight"]}  # the last conv alone suffices
    assert "disconnects" in Prior(spec=spec, masks=cut, compact=False).warning
    assert Prior(spec=spec, masks=kept).warning is None and Prior(spec=spec).warning is None
