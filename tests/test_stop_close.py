"""The stop's close (FitConfig.es_close, `--es-close`; lipcli/earlystop.py): once a variance minimum has counted and
the residual's trailing lag-1 autocorrelation is down to the level, no later minimum counts. The default ticket
closes where its estimate reads above 37.5 (experiments/RESULTS-stop-close.md). Help, `--json` and refusals:
tests/test_sgld.py, tests/test_bad_input.py."""
from __future__ import annotations

import torch

from lipcli import library
from lipcli.config import at_level
from lipcli.earlystop import WindowedVariance
from lipcli.fit import FitConfig, fit
from conftest import tiny_spec
from test_fit import make_run


def test_close_keeps_later_minima_out_once_the_residual_is_high_passed():
    """Outputs whose windowed variance falls at every step (no minimum ever holds for the patience): open, the
    detector follows it to the end; closed at 0, it keeps the last minimum before the residual (structure until
    60) turned high-pass and stops a patience later. A residual high-passed from the start shuts it only once the
    first minimum has counted, so that one is kept."""
    gen = torch.Generator().manual_seed(3)
    base, wiggle = torch.rand(16, generator=gen), torch.randn(16, generator=gen)
    seq = [base + 0.99 ** t * (-1) ** t * wiggle for t in range(1, 201)]
    smooth = torch.nn.functional.avg_pool2d(torch.randn((1, 1, 34, 34), generator=gen), 3, 1)
    noise = torch.randn((1, 1, 32, 32), generator=gen)
    high_pass = noise - 0.5 * torch.nn.functional.avg_pool2d(noise, 3, 1, 1, count_include_pad=False)
    dets = {"open": WindowedVariance(8, 30), "closed": WindowedVariance(8, 30, floor_window=5, close=0.0),
            "early": WindowedVariance(8, 30, floor_window=5, close=0.0)}
    stops: dict[str, int] = {}
    for t, x in enumerate(seq, start=1):
        for name, det in dets.items():
            det.update(t, x, residual=high_pass if name == "early" or t >= 60 else smooth)
            if det.should_stop(t):
                stops.setdefault(name, t)
    assert dets["open"].best_iter == 200 and "open" not in stops
    assert dets["closed"].closed and 60 <= dets["closed"].best_iter <= 64
    assert stops["closed"] == dets["closed"].best_iter + 30
    assert dets["early"].best_iter == 8 and stops["early"] == 38


def test_a_fit_closed_at_once_keeps_its_first_minimum(rgb32):
    """A level every residual meets shuts the stop as soon as the trailing autocorrelation has its 50 values (no
    noise gate): the fit reports the last minimum before then and ends a patience later, sooner than the open fit,
    whose minima go on."""
    runs = {}
    for close in (0.0, 0.999):
        net, target, _ = make_run(tiny_spec(), rgb32)
        runs[close] = fit(net, [target], FitConfig(iters=300, es_window=10, es_patience=30, es_gate=0,
                                                          es_close=close))
    lag = round(FitConfig().ema / (1 - FitConfig().ema))
    closed, best = runs[0.999], runs[0.999].targets[0].stopped_at - lag
    assert closed.targets[0].auto_stopped and 10 <= best < 50
    assert closed.iterations == best + max(30, lag) < runs[0.0].iterations
    assert runs[0.0].targets[0].stopped_at > closed.targets[0].stopped_at


def test_the_default_ticket_closes_its_stop_only_above_37_5():
    """Below 37.5 the close stopped textured crops before their peaks (sigma 15 live, sigma 25 replayed)."""
    schedule = library.fast_settings("dip-channel-house", "fast", "denoise", named=True)["es_close"]
    assert [at_level("es_close", schedule, s) for s in (10.0, 15.0, 25.0, 37.5, 40.0, 60.0)] == [0, 0, 0, 0, 0.015,
                                                                                                   0.015]
