"""Tests for the fitting loop (lipcli.fit) and early stopping (lipcli.earlystop)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lipcli import nets
from lipcli.earlystop import WindowedVariance, lag1_correlation
from lipcli.errors import LipError, LipRuntimeError
from lipcli.fit import DivergenceError, FitConfig, Target, crop_center, fit
from lipcli.masks import apply_masks
from lipcli.metrics import psnr
from lipcli.physics import Denoise
from conftest import narrow_spec, tiny_spec


def make_run(spec, clean_img, *, sigma=25.0, op=None, seed=0, size=None):
    """A fresh net (seeded), its target for the denoising of `clean_img`, and the noisy observation."""
    torch.manual_seed(seed)
    net = nets.build(spec)
    op = op or Denoise(sigma)
    y = Denoise(sigma)(clean_img, torch.Generator().manual_seed(seed))
    h, w = size or clean_img.shape[-2:]
    z = nets.make_input(net, *nets.padded_size(net, h, w), torch.Generator().manual_seed(seed))
    return net, Target(z=z, op=op, y=y, size=(h, w)), y


# ---------------------------------------------------------------- early stopping (scripted)

def _brute_force_variances(seq: list[np.ndarray], window: int) -> dict[int, float]:
    """VAR_t for t = window..len (1-based iterations), in float64."""
    out = {}
    for t in range(window, len(seq) + 1):
        block = np.stack(seq[t - window:t])
        out[t] = float(block.var(axis=0).mean())
    return out


def _scripted_sequence(n=200, valley=90, size=6, seed=0) -> list[np.ndarray]:
    """Outputs that wander less and less until `valley`, then more and more."""
    rng = np.random.default_rng(seed)
    base = rng.random(size)
    return [base + (0.02 + abs(t - valley) / 50) * rng.standard_normal(size) for t in range(1, n + 1)]


def test_windowed_variance_finds_the_minimum():
    window, patience = 10, 25
    seq = _scripted_sequence()
    ref = _brute_force_variances(seq, window)
    best_t = min(ref, key=ref.get)
    det = WindowedVariance(window, patience)
    improved, stop_at = [], None
    running = math.inf
    for t, x in enumerate(seq, start=1):
        new_min = det.update(t, torch.tensor(x, dtype=torch.float32))
        if t < window:
            assert not new_min  # not enough outputs for a variance yet
        if new_min:
            improved.append(t)
        if t in ref and ref[t] < running * (1 - 1e-4):
            running = ref[t]
            assert new_min, f"iteration {t} is a clear new minimum"
        if stop_at is None and det.should_stop(t):
            stop_at = t
    assert det.best_iter == best_t
    assert abs(det.best - ref[best_t]) <= 1e-4 * ref[best_t]
    assert improved[-1] == best_t and improved == sorted(improved)
    assert stop_at == best_t + patience  # the first iteration at which patience has run out
    assert not det.should_stop(best_t + patience - 1)


def test_windowed_variance_monotone_decrease_never_stops():
    det = WindowedVariance(5, 3)
    for t in range(1, 60):
        det.update(t, (0.8 ** t) * torch.tensor([1.0, -1.0, 2.0, -3.0]))
        assert not det.should_stop(t)
    assert det.best_iter == 59


def test_windowed_variance_before_window_never_stops():
    det = WindowedVariance(50, 1)
    for t in range(1, 50):
        assert not det.update(t, torch.rand(3))
        assert not det.should_stop(t)
    assert det.best_iter == -1


def test_windowed_variance_subsamples_large_outputs():
    det = WindowedVariance(4, 2, max_values=100, seed=3)
    seq = [torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(t)) for t in range(12)]
    for t, x in enumerate(seq, start=1):
        det.update(t, x)
    assert det.buffer.shape == (4, 100) and det.index.shape == (100,)
    # The watched subset is a fixed function of the seed.
    other = WindowedVariance(4, 2, max_values=100, seed=3)
    other.update(1, seq[0])
    assert torch.equal(det.index, other.index)


def _two_dips(n: int = 120) -> list[torch.Tensor]:
    """Outputs whose windowed variance has a deep dip at ~40 and a shallower one at ~90."""
    rng = np.random.default_rng(1)
    base = rng.random(16)
    return [torch.tensor(base + (0.01 if 30 <= t <= 50 else 0.05 if 80 <= t <= 100 else 0.2)
                         * rng.standard_normal(16), dtype=torch.float32) for t in range(1, n + 1)]


def test_noise_gate_ignores_minima_while_the_loss_is_above_the_floor():
    """The variance dip at ~40 comes while the loss is still above the noise floor (the net has not
    explained the image yet): the gated detector takes the later dip, the plain one the earlier."""
    seq = _two_dips()
    loss = [1.0 if t < 70 else 0.5 for t in range(1, 121)]  # falls under the floor at 70
    plain, gated = WindowedVariance(8, 200), WindowedVariance(8, 200, floor=0.6, floor_window=5)
    for t, (x, l_) in enumerate(zip(seq, loss), start=1):
        plain.update(t, x, l_)
        gated.update(t, x, l_)
    assert 30 <= plain.best_iter <= 58
    assert gated.gate_open and gated.gate_iter == 73  # the 5-iteration trailing mean is 0.6 at 73
    assert 80 <= gated.best_iter <= 108


def test_the_rules_pick_is_final_once_the_patience_has_run_out():
    """A deeper dip after the rule fired is not its pick: with the stop off the fit runs on and reported the
    minimum over the whole run as the rule's (patience had no effect). The patience decides now."""
    rng = np.random.default_rng(1)
    base = rng.random(16)
    seq = [torch.tensor(base + (0.05 if 30 <= t <= 50 else 0.01 if 80 <= t <= 100 else 0.2)
                        * rng.standard_normal(16), dtype=torch.float32) for t in range(1, 121)]
    short, long_ = WindowedVariance(8, 15), WindowedVariance(8, 200)
    fired = None
    for t, x in enumerate(seq, start=1):
        short.update(t, x)
        long_.update(t, x)
        if fired is None and short.should_stop(t):
            fired = (t, short.best_iter)
    assert fired is not None and 30 <= fired[1] <= 58 and fired[0] == fired[1] + 15
    assert short.best_iter == fired[1] and short.should_stop(120) and not short.reads_residual
    assert 80 <= long_.best_iter <= 108  # a patience that outlasts the first dip waits for the deeper one


def test_noise_gate_stays_shut_without_losses_and_never_stops():
    det = WindowedVariance(4, 2, floor=0.1)
    for t, x in enumerate(_two_dips(), start=1):
        assert not det.update(t, x)  # no loss given: the gate cannot open
        assert not det.should_stop(t)
    assert not det.gate_open and det.best_iter == -1


def test_lag1_correlation_reads_white_noise_as_zero_structure_as_positive_and_a_high_pass_as_negative():
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((1, 3, 64, 64), generator=gen)
    smooth = torch.nn.functional.avg_pool2d(torch.randn((1, 3, 66, 66), generator=gen), 3, 1)
    high_pass = noise - 0.5 * torch.nn.functional.avg_pool2d(noise, 3, 1, 1, count_include_pad=False)
    assert abs(lag1_correlation(noise)) < 0.02
    assert lag1_correlation(smooth) > 0.5 and lag1_correlation(smooth + 5) == pytest.approx(lag1_correlation(smooth))
    assert lag1_correlation(high_pass) < -0.05
    assert lag1_correlation(3 * noise) == pytest.approx(lag1_correlation(noise), abs=1e-7)  # scale-free


def test_whiteness_gate_ignores_minima_while_the_residual_holds_structure():
    """As the noise gate, on the residual: structure (correlated) until 70, white noise after; the gated
    detector takes the later dip. No residual given: the gate stays shut."""
    seq, gen = _two_dips(), torch.Generator().manual_seed(2)
    smooth = torch.nn.functional.avg_pool2d(torch.randn((1, 1, 34, 34), generator=gen), 3, 1)
    residuals = [smooth if t < 70 else torch.randn((1, 1, 32, 32), generator=gen) for t in range(1, 121)]
    gated, shut = WindowedVariance(8, 200, floor_window=5, white=0.1), WindowedVariance(8, 200, white=0.1)
    for t, (x, r) in enumerate(zip(seq, residuals), start=1):
        gated.update(t, x, residual=r)
        shut.update(t, x)
    assert gated.white_open and 80 <= gated.best_iter <= 108
    assert not shut.white_open and shut.best_iter == -1


@pytest.mark.parametrize("window, patience", [(1, 5), (0, 5), (5, 0)])
def test_windowed_variance_rejects_bad_settings(window, patience):
    with pytest.raises(ValueError):
        WindowedVariance(window, patience)


# ---------------------------------------------------------------- the loop

def test_denoise_raises_psnr_by_several_db(rgb64):
    net, target, y = make_run(narrow_spec(), rgb64)
    target.clean = rgb64
    noisy = psnr(y, rgb64)
    result = fit(net, [target], FitConfig(iters=220, early_stop=False, metric_every=20))
    tr = result.targets[0]
    gain = psnr(tr.final, rgb64) - noisy
    assert gain >= 4, f"denoising gained only {gain:.2f} dB over the noisy input ({noisy:.2f} dB)"
    assert result.iterations == 220 and len(result.losses) == 220 and result.recoveries == 0
    assert tr.final.shape == (1, 3, 64, 64)
    assert tr.curve and all(it % 20 == 0 for it, _ in tr.curve)
    assert tr.oracle_best == max(v for _, v in tr.curve)
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20])


def test_fit_crops_padded_output_to_odd_size(gray37x53):
    clean = gray37x53.expand(1, 3, -1, -1).contiguous()
    net, target, _ = make_run(tiny_spec(), clean)
    assert target.z.shape[-2:] == (40, 56)
    result = fit(net, [target], FitConfig(iters=3, early_stop=False))
    assert result.targets[0].final.shape == (1, 3, 37, 53)


def test_crop_center():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    c = crop_center(x, (4, 6))
    assert c.shape == (1, 1, 4, 6) and c[0, 0, 0, 0] == x[0, 0, 2, 1]


def _random_masks(net, keep=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = dict(net.named_parameters())
    return {n: torch.rand(params[n].shape, generator=gen) < keep for n in nets.conv_weight_names(net)}


def test_masked_weights_stay_exactly_zero(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    masks = _random_masks(net)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    fit(net, [target], FitConfig(iters=25, early_stop=False, lr=0.05), masks=masks)
    params = dict(net.named_parameters())
    for name, keep in masks.items():
        p = params[name].detach()
        assert (p[~keep] == 0).all(), f"{name} has non-zero pruned weights"
        assert not torch.equal(p[keep], before[name][keep]), f"{name} did not train"
    assert all(int((~m).sum()) > 0 for m in masks.values())


def test_masked_weights_stay_zero_through_rollback(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, bad_calls={15, 27})
    masks = _random_masks(net, keep=0.3, seed=1)
    result = fit(net, [target], FitConfig(iters=30, early_stop=False), masks=masks)
    assert result.recoveries == 2
    params = dict(net.named_parameters())
    assert all((params[n].detach()[~m] == 0).all() for n, m in masks.items())


def test_apply_masks_zeroes_in_place():
    net = nets.build(tiny_spec())
    masks = _random_masks(net, keep=0.2)
    apply_masks(net, masks)
    params = dict(net.named_parameters())
    assert all((params[n].detach()[~m] == 0).all() for n, m in masks.items())


def test_early_stop_ends_the_run(rgb32):
    cfg = FitConfig(iters=600, es_window=10, es_patience=30)
    net, target, _ = make_run(tiny_spec(), rgb32)
    result = fit(net, [target], cfg)
    tr = result.targets[0]
    assert result.iterations < cfg.iters, "early stopping never fired on a run it should end"
    # The EMA output reported is taken `lag` iterations after the variance minimum (its centre of
    # mass then sits on the minimum); the run ends once both patience and lag have passed.
    lag = round(cfg.ema / (1 - cfg.ema))
    best = tr.stopped_at - lag
    assert result.iterations == max(best + cfg.es_patience, best + lag)

    cfg = FitConfig(iters=600, es_window=10, es_patience=150)  # patience beyond the lag
    net, target, _ = make_run(tiny_spec(), rgb32)
    result = fit(net, [target], cfg)
    tr = result.targets[0]
    assert result.iterations == tr.stopped_at - lag + cfg.es_patience
    assert tr.stopped.shape == tr.final.shape and not torch.equal(tr.stopped, tr.final)

    # Without early stopping the same run goes on, and reports the same stop point (always computed).
    net, target, _ = make_run(tiny_spec(), rgb32)
    full = fit(net, [target], FitConfig(iters=result.iterations + 20, es_window=10, es_patience=150,
                                         early_stop=False))
    assert full.iterations == result.iterations + 20
    assert full.targets[0].stopped_at == tr.stopped_at
    assert torch.equal(full.targets[0].stopped, tr.stopped)


def test_whiteness_gate_reads_the_fits_own_residual(rgb32):
    """A level every residual meets stops as no gate does; one no residual of a short fit meets (it still holds
    the image) keeps every minimum out, so the run ends at its cap with the last iterate."""
    runs = {}
    for white in (0.0, 0.999, 1e-6):
        net, target, _ = make_run(tiny_spec(), rgb32)
        runs[white] = fit(net, [target], FitConfig(iters=300, es_window=10, es_patience=30, es_white=white))
    assert runs[0.999].iterations == runs[0.0].iterations < 300
    assert torch.equal(runs[0.999].targets[0].stopped, runs[0.0].targets[0].stopped)
    assert runs[1e-6].iterations == 300 and not runs[1e-6].targets[0].auto_stopped


def test_detector_that_never_fires_stops_at_last_iterate(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    result = fit(net, [target], FitConfig(iters=15, es_window=100))
    tr = result.targets[0]
    assert result.iterations == 15 and tr.stopped_at == 15 and torch.equal(tr.stopped, tr.final)


@pytest.mark.parametrize("ema", [0.99, 0.0])
def test_clean_image_never_steers_the_run(rgb32, ema):
    cfg = FitConfig(iters=300, es_window=10, es_patience=30, ema=ema)
    runs = []
    for clean in (None, rgb32, torch.zeros_like(rgb32)):
        net, target, _ = make_run(tiny_spec(), rgb32)
        target.clean = clean
        runs.append(fit(net, [target], cfg))
    plain = runs[0]
    assert plain.targets[0].oracle_best is None and plain.targets[0].curve == []
    assert runs[1].targets[0].oracle_best is not None
    for other in runs[1:]:
        assert other.iterations == plain.iterations
        assert other.losses == plain.losses
        assert other.targets[0].stopped_at == plain.targets[0].stopped_at
        assert torch.equal(other.targets[0].final, plain.targets[0].final)
        assert torch.equal(other.targets[0].stopped, plain.targets[0].stopped)


def test_fit_is_reproducible_and_seed_matters(rgb32):
    outs = []
    for seed in (0, 0, 1):
        net, target, _ = make_run(tiny_spec(), rgb32)
        outs.append(fit(net, [target], FitConfig(iters=10, early_stop=False, seed=seed)))
    assert torch.equal(outs[0].targets[0].final, outs[1].targets[0].final)
    assert not torch.equal(outs[0].targets[0].final, outs[2].targets[0].final)


def test_two_targets_share_one_net(rgb32, gray37x53):
    torch.manual_seed(0)
    net = nets.build(tiny_spec())
    targets = []
    for k, img in enumerate((rgb32, gray37x53.expand(1, 3, -1, -1).contiguous())):
        h, w = img.shape[-2:]
        z = nets.make_input(net, *nets.padded_size(net, h, w), torch.Generator().manual_seed(k))
        targets.append(Target(z=z, op=Denoise(25), y=img, size=(h, w)))
    result = fit(net, targets, FitConfig(iters=5, early_stop=False))
    assert [t.final.shape for t in result.targets] == [(1, 3, 32, 32), (1, 3, 37, 53)]


def test_iters_must_be_positive(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    with pytest.raises(ValueError):
        fit(net, [target], FitConfig(iters=0))


# ---------------------------------------------------------------- rollback

class FlakyDenoise(Denoise):
    """A denoising operator whose loss goes bad at chosen calls (1-based): NaN, or `jump` times the loss."""

    def __init__(self, sigma, bad_calls=(), nan_from=None, jump=None):
        super().__init__(sigma)
        self.bad_calls, self.nan_from, self.jump, self.calls = set(bad_calls), nan_from, jump, 0

    def loss(self, x, y):
        self.calls += 1
        loss = super().loss(x, y)
        if self.calls in self.bad_calls or (self.nan_from is not None and self.calls >= self.nan_from):
            return loss * (float("nan") if self.jump is None else self.jump)
        return loss


def test_a_snapshot_keeps_the_weights_its_loss_was_measured_at(rgb32, monkeypatch):
    """DIP's backtracking restores the weights whose loss passed the test. A snapshot taken after the step paired
    that loss with the next weights: where one step moves the loss by more than the jump factor, every retry
    from them failed until the fit was given up (RESULTS-decay-tasks.md)."""
    from lipcli import fit as fitting
    net, target, _ = make_run(tiny_spec(), rgb32)
    taken, seen = [], {}
    take = fitting.Snapshot.take

    def recording(self, loss):  # the snapshot as taken, then a copy of what it saved
        take(self, loss)
        taken.append([t.clone() for t in self.saved])

    def keep(step):  # the weights after each iteration's step
        seen[step.iteration] = [p.detach().clone() for p in net.state_dict().values()]

    monkeypatch.setattr(fitting.Snapshot, "take", recording)
    fit(net, [target], FitConfig(iters=25, early_stop=False, checkpoint_every=10), callbacks=[keep])
    assert len(taken) == 3  # the initial weights, then at iterations 10 and 20 (before their steps)
    for saved, after in zip(taken[1:], (9, 19)):  # weights after 9 steps: those the 10th loss was measured at
        params = [s for s, p in zip(saved, net.state_dict().values()) if p.is_floating_point() and p.dim() > 1]
        expected = [p for p in seen[after] if p.is_floating_point() and p.dim() > 1]
        assert all(torch.equal(a, b) for a, b in zip(params, expected))


def test_rollback_recovers_from_a_nan_loss(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, bad_calls={23})
    result = fit(net, [target], FitConfig(iters=40, early_stop=False))
    assert result.recoveries >= 1
    assert result.iterations == 40 and len(result.losses) == 40
    assert all(math.isfinite(v) for v in result.losses)
    assert torch.isfinite(result.targets[0].final).all()
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_rollback_recovers_from_a_loss_jump(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, bad_calls={25}, jump=1e6)  # after the first snapshot (iteration 10)
    result = fit(net, [target], FitConfig(iters=40, early_stop=False))
    assert result.recoveries == 1
    assert max(result.losses) < 1  # the jumped loss was never accepted


def test_rollback_recovers_from_a_nan_forward(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    calls = {"n": 0}

    def poison(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 12 else output

    net.head.register_forward_hook(poison)
    result = fit(net, [target], FitConfig(iters=30, early_stop=False))
    assert result.recoveries >= 1 and result.iterations == 30
    assert torch.isfinite(result.targets[0].final).all()
    assert torch.isfinite(result.targets[0].stopped).all()


def test_rollback_restores_last_good_weights(rgb32):
    """After a rollback the run continues from the snapshot, so it differs only from then on."""
    runs = []
    for bad in (set(), {35}):
        net, target, _ = make_run(tiny_spec(), rgb32)
        target.op = FlakyDenoise(25, bad_calls=bad)
        runs.append(fit(net, [target], FitConfig(iters=40, early_stop=False, reg_noise=0)))
    clean_run, faulty = runs
    assert faulty.recoveries == 1
    assert faulty.losses[:34] == clean_run.losses[:34]
    # Iteration 35 is redone from the snapshot taken at iteration 30 before its step (weights and Adam's moments):
    # without jitter the fit repeats iterations 30, 31, ... exactly.
    assert faulty.losses[34:38] == clean_run.losses[29:33]


def test_repeated_faults_raise_divergence_error(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, nan_from=18)
    cfg = FitConfig(iters=60, early_stop=False, max_recoveries=3)
    with pytest.raises(DivergenceError) as info:
        fit(net, [target], cfg)
    exc = info.value
    assert isinstance(exc, LipRuntimeError) and isinstance(exc, LipError)
    assert exc.exit_code == 1 and DivergenceError.exit_code == 1
    assert "diverged" in str(exc) and "\n" not in str(exc)
    # The result holds the last good outputs (17 accepted iterations), all finite.
    assert exc.result.iterations == 17 and exc.result.recoveries == cfg.max_recoveries + 1
    assert torch.isfinite(exc.result.targets[0].final).all()


def test_nan_from_the_start_raises_divergence_error(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.op = FlakyDenoise(25, nan_from=1)
    with pytest.raises(DivergenceError) as info:
        fit(net, [target], FitConfig(iters=10, early_stop=False))
    assert info.value.result.iterations == 0


def test_callbacks_see_every_step(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    target.clean = rgb32
    steps = []
    fit(net, [target], FitConfig(iters=7, early_stop=False, metric_every=3), callbacks=[steps.append])
    assert [s.iteration for s in steps] == list(range(1, 8))
    assert all(s.total == 7 and math.isfinite(s.loss) for s in steps)
    assert [s.metrics[0] is not None for s in steps] == [False, False, True, False, False, True, True]


def test_a_callback_returning_true_ends_the_run(rgb32):
    net, target, _ = make_run(tiny_spec(), rgb32)
    seen = []
    result = fit(net, [target], FitConfig(iters=50, early_stop=False),
                 callbacks=[lambda s: s.iteration == 12, lambda s: seen.append(s.iteration)])
    assert result.iterations == 12 and seen[-1] == 12  # every callback still saw the last step


def test_checkpointed_conv_blocks_give_the_same_fit(rgb32):
    """Recomputing conv blocks in backward is exact: same losses and outputs, bit for bit."""
    runs = []
    for ckpt in (False, True):
        net, target, _ = make_run(tiny_spec(), rgb32)
        runs.append(fit(net, [target], FitConfig(iters=8, early_stop=False, checkpoint=ckpt)))
        assert all(m.checkpointed == ckpt for m in net.modules() if isinstance(m, nets.ConvBlock))
    assert runs[0].losses == runs[1].losses
    assert torch.equal(runs[0].targets[0].final, runs[1].targets[0].final)


@pytest.mark.parametrize("name", nets.image_presets())
def test_a_bf16_input_is_what_autocast_gives_every_net(name):
    """observation_loss casts the input to bf16 once: for every net preset that is exactly what autocast does
    conv by conv (a net whose first op were no conv would fail here)."""
    torch.manual_seed(0)
    net = nets.build(nets.preset(name)).to(memory_format=torch.channels_last)
    z = nets.make_input(net, *nets.padded_size(net, 32, 32), torch.Generator().manual_seed(0))
    results = []
    for x in (z, z.to(torch.bfloat16)):
        net.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x.to(memory_format=torch.channels_last))
        out.float().square().mean().backward()
        results.append([out, *(p.grad for p in net.parameters())])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_a_file_too_large_is_refused_from_its_header_before_it_is_decoded(tmp_path, monkeypatch):
    """A 4000x3000 photo took 14 s and 3.7 GB (decoded, its noise estimated) to be refused."""
    from PIL import Image
    from lipcli import api, images, restore
    Image.new("RGB", (3000, 2000)).save(tmp_path / "big.png")
    np.save(tmp_path / "big.npy", np.zeros((2000, 3000), np.float32))  # arrays too (Pillow reads no .npy header)
    monkeypatch.setattr(restore.devices, "available_memory", lambda dev: 2**30)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    monkeypatch.setattr(images, "from_array", lambda *a, **k: pytest.fail("decoded"))
    for name in ("big.png", "big.npy"):
        with pytest.raises(LipError, match=f"{name}: a 3008x2016 fit .* needs about"):
            api.restorer(device="cpu").problem(tmp_path / name)
        assert images.header_size(tmp_path / name) == (3000, 2000)  # what --jobs plans with


def test_a_compacted_fit_plans_the_memory_of_the_compacted_net():
    """The default ticket keeps about a third of the channels: planned as the dense net, a restore checkpointed or
    refused images the compacted fit holds."""
    from lipcli import api
    ticket = api.restorer(device="cpu").prior
    kept, spec = ticket.fitted_spec, ticket.spec
    assert max(kept["down"] + kept["up"]) < max(spec["down"] + spec["up"])
    assert nets.estimate_bytes(kept, 1024, 1024, "bf16") < 0.5 * nets.estimate_bytes(spec, 1024, 1024, "bf16")
    assert api.restorer(device="cpu", compact=False).prior.fitted_spec == spec  # the masked net is fitted
    assert api.restorer(device="cpu", dense=True).prior.fitted_spec["down"] == spec["down"]


@pytest.mark.parametrize("free_gib, asked, expected", [(100, None, False), (4.5, None, True), (100, True, True),
                                                       (4.5, False, "error"), (2, None, "error")])
def test_plan_memory_checkpoints_only_when_needed(monkeypatch, free_gib, asked, expected):
    from lipcli import restore
    spec, size = nets.preset("dip"), (1024, 1024)
    assert nets.estimate_bytes(spec, *size, "bf16", True) < 0.9 * 4.5 * 2**30 < \
        nets.estimate_bytes(spec, *size, "bf16")
    monkeypatch.setattr(restore.devices, "available_memory", lambda dev: int(free_gib * 2**30))
    cfg = FitConfig(precision="bf16", checkpoint=asked)
    if expected == "error":
        with pytest.raises(LipError, match="GiB"):
            restore.plan_memory(spec, size, cfg, torch.device("cpu"))
    else:
        assert restore.plan_memory(spec, size, cfg, torch.device("cpu")).checkpoint is expected
