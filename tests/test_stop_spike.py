"""The stop's spike guard (FitConfig.es_spike, lipcli.fit.SpikeGuard): a loss spike between the variance minimum
and the lagged output reports the minimum's own output; without one the report is unchanged. The help and `--json`:
tests/test_sgld.py."""
from __future__ import annotations

import pytest
import torch

from lipcli import api, fit as fit_mod
from lipcli.errors import LipError
from lipcli.fit import FitConfig, SpikeGuard, fit
from conftest import tiny_spec
from prune_helpers import isolated_folder
from test_fit import make_run

MINIMUM, SPIKE, EMA = 80, 83, 0.9  # a scripted variance minimum at 80, the loss up from 83; the lag is 9


def test_the_guard_compares_the_peak_after_the_minimum_with_the_trailing_mean_before_it():
    guard = SpikeGuard(1.2)
    guard.minimum(5, torch.ones(2), [9.0] * 60 + [1.0] * 50)  # the mean of the last 50 losses: 1
    guard.watch(1.19)
    assert not guard.spiked() and guard.at == 5
    guard.watch(1.21)
    assert guard.spiked()
    guard.minimum(7, torch.zeros(2), [1.0] * 50)  # a new minimum forgets the old peak and takes its output
    assert not guard.spiked() and torch.equal(guard.output, torch.zeros(2))
    assert not SpikeGuard(0.0).spiked()


class ScriptedMinimum(fit_mod.WindowedVariance):
    """A detector whose only minimum is at iteration MINIMUM: the lagged output is taken at MINIMUM + lag, and the
    fit ends there."""

    def update(self, iteration, x, loss=None, residual=None):
        return iteration == MINIMUM

    def should_stop(self, iteration):
        return iteration > MINIMUM


def spiked_fit(image, factor, monkeypatch):
    """A fit whose observation is shifted after iteration SPIKE, so the loss rises ~2.5x (under rollback's 3.2x)."""
    monkeypatch.setattr(fit_mod, "WindowedVariance", ScriptedMinimum)
    net, target, _ = make_run(tiny_spec(), image)
    shown = {}

    def callback(step):
        shown[step.iteration] = step.shown[0].clone()
        if step.iteration == SPIKE:
            target.y.add_((1.5 * step.loss) ** 0.5)

    cfg = FitConfig(iters=100, ema=EMA, es_window=5, es_patience=10, es_gate=0, es_spike=factor)
    return fit(net, [target], cfg, callbacks=[callback]), shown


@pytest.mark.parametrize("factor", [0.0, 1.2])
def test_a_spike_before_the_lag_reports_the_minimums_output_only_with_the_guard(rgb32, monkeypatch, factor):
    result, shown = spiked_fit(rgb32, factor, monkeypatch)
    before = result.losses[MINIMUM - SpikeGuard.WINDOW:MINIMUM]
    assert result.recoveries == 0 and result.losses[SPIKE + 1] > 1.2 * sum(before) / len(before)
    r = result.targets[0]
    at = MINIMUM if factor else MINIMUM + fit_mod.ema_lag(EMA)
    assert r.auto_stopped and r.stopped_at == at and torch.equal(r.stopped, shown[at])


def test_without_a_spike_the_guard_changes_nothing(rgb32, monkeypatch):
    monkeypatch.setattr(fit_mod, "WindowedVariance", ScriptedMinimum)
    runs = []
    for factor in (0.0, 1.2):
        net, target, _ = make_run(tiny_spec(), rgb32)
        cfg = FitConfig(iters=100, ema=EMA, es_window=5, es_patience=10, es_gate=0, es_spike=factor)
        runs.append(fit(net, [target], cfg).targets[0])
    assert runs[0].stopped_at == runs[1].stopped_at == MINIMUM + fit_mod.ema_lag(EMA)
    assert torch.equal(runs[0].stopped, runs[1].stopped)


def test_the_guard_is_saved_with_a_resumable_fit():
    guard = SpikeGuard(1.5)
    guard.minimum(12, torch.arange(4.0), [2.0] * 10)
    guard.watch(3.5)
    again = SpikeGuard(1.5)
    again.load_state_dict(guard.state_dict(), torch.device("cpu"))
    assert (again.at, again.ref, again.peak, again.spiked()) == (12, 2.0, 3.5, True)
    assert torch.equal(again.output, guard.output)


# ---------------------------------------------------------------- settings

def test_the_default_ticket_guards_its_stop_and_a_flag_or_key_sets_the_guard(tmp_path, monkeypatch):
    isolated_folder(tmp_path, monkeypatch)
    assert api.restorer(device="cpu").cfg.es_spike == 1.2  # the ticket's entry: it ships with the decay that spikes
    for other in ({"dense": True}, {"config": "paper"}, {"es_spike": 0}, {"task": "sr"}):
        assert api.restorer(device="cpu", **other).cfg.es_spike == 0.0, other
    (tmp_path / "s.yaml").write_text("es_spike: 1.5\n")
    assert api.restorer(device="cpu", config="s.yaml").cfg.es_spike == 1.5
    assert api.restorer(device="cpu", config="s.yaml", es_spike=2).cfg.es_spike == 2.0  # the flag wins
    with pytest.raises(LipError, match="--es-spike 0.5 must be 0 \\(off\\) or a finite number above 1"):
        api.restorer(device="cpu", es_spike=0.5)
