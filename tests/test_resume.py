"""A fit's saved state (lipcli/resume.py): a stopped or extended fit continues to exactly the result of
the uninterrupted one, and a state that belongs to another fit is never loaded."""
from __future__ import annotations

import signal
from pathlib import Path
from dataclasses import replace

import pytest
import torch

from lipcli.fit import FitConfig, fit
from lipcli.resume import Keeper, clear
from conftest import tiny_spec
from test_fit import _random_masks, make_run

# Every part of the loop's state is exercised: EMA, input jitter, SGLD's own noise stream, the stop
# detector's window and its noise gate, the scores against a clean image and a mask.
CFG = FitConfig(iters=160, es_window=10, es_patience=40, sgld=0.5, early_stop=False)


class Stop(Exception):
    """What the CLI makes of SIGTERM (cli/render.py's Terminated)."""


def _raise_stop(signum, frame):
    raise Stop()


def run(rgb32, cfg=CFG, keeper=None, callbacks=(), sigma=25.0, clean=None):
    net, target, _ = make_run(tiny_spec(), rgb32, sigma=sigma)
    target.clean, target.noise_floor = rgb32 if clean is None else clean, (sigma / 255) ** 2
    masks = _random_masks(net, keep=0.5)
    return fit(net, [target], cfg, masks=masks, callbacks=callbacks, keeper=keeper)


def same(a, b) -> None:
    assert a.iterations == b.iterations and a.losses == b.losses and a.recoveries == b.recoveries
    ta, tb = a.targets[0], b.targets[0]
    assert ta.stopped_at == tb.stopped_at and ta.curve == tb.curve
    assert (ta.oracle_best, ta.oracle_best_iter) == (tb.oracle_best, tb.oracle_best_iter)
    assert torch.equal(ta.final, tb.final) and torch.equal(ta.stopped, tb.stopped)


@pytest.fixture
def sigterm_raises():
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_saves_the_state_and_the_next_run_continues_it_exactly(rgb32, tmp_path, sigterm_raises):
    reference = run(rgb32)
    path, lines = tmp_path / "out.png.lip-resume", []

    def interrupt(step):
        if step.iteration == 70:
            signal.raise_signal(signal.SIGTERM)  # deferred to the end of the iteration, then delivered

    with pytest.raises(Stop):
        run(rgb32, keeper=Keeper(path, every=None), callbacks=[interrupt])
    assert path.is_file()
    assert signal.getsignal(signal.SIGTERM) is _raise_stop  # the handler is the caller's again

    keeper = Keeper(path, every=None, notify=lines.append)
    resumed = run(rgb32, keeper=keeper)
    assert keeper.resumed_from == 70 and "iteration 70" in lines[0]
    same(resumed, reference)


def test_a_periodically_saved_fit_can_be_taken_further(rgb32, tmp_path):
    path = tmp_path / "state"
    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 30}), keeper=Keeper(path, every=0))  # saves every iteration
    keeper = Keeper(path, every=None)
    longer = run(rgb32, keeper=keeper)  # the cap is not part of what makes a fit the same fit
    assert keeper.resumed_from == 30
    same(longer, run(rgb32))


def test_a_fit_continued_on_another_thread_count_says_so(rgb32, tmp_path):
    """Sums then round in another order: the continued fit matches neither count's, and the user is told."""
    path, lines, threads = tmp_path / "state", [], torch.get_num_threads()
    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 40}), keeper=Keeper(path, every=0))
    torch.set_num_threads(threads + 1)
    try:
        run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 50}), keeper=Keeper(path, every=None, notify=lines.append))
    finally:
        torch.set_num_threads(threads)
    assert f"ran on {threads} thread(s), this run has {threads + 1}" in lines[1]
    lines.clear()
    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 60}), keeper=Keeper(path, every=None, notify=lines.append))
    assert len(lines) == 1  # the same count: only the continuing notice


def test_a_state_past_a_lowered_cap_is_not_taken(rgb32, tmp_path):
    """The same fit saved at iteration 100 cannot give what a 60-iteration run gives: it starts over."""
    path, lines, short = tmp_path / "state", [], FitConfig(**{**vars(CFG), "iters": 60})
    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 100}), keeper=Keeper(path, every=None, final=True))
    keeper = Keeper(path, every=None, notify=lines.append)
    same(run(rgb32, cfg=short, keeper=keeper), run(rgb32, cfg=short))
    assert keeper.resumed_from is None and "past this run's cap of 60: starting over" in lines[0]


def test_a_state_of_another_fit_or_a_damaged_one_is_not_loaded(rgb32, tmp_path):
    path, lines = tmp_path / "state", []
    reference = run(rgb32)
    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 50}), keeper=Keeper(path, every=None, final=True), sigma=15.0)
    keeper = Keeper(path, every=None, notify=lines.append)
    same(run(rgb32, keeper=keeper), reference)  # another observation: started over
    assert keeper.resumed_from is None and "another fit" in lines[0]

    lr = FitConfig(**{**vars(CFG), "iters": 50, "lr": 0.02})
    run(rgb32, cfg=lr, keeper=Keeper(path, every=None, final=True))
    keeper = Keeper(path, every=None)
    run(rgb32, keeper=keeper)  # another setting
    assert keeper.resumed_from is None

    run(rgb32, cfg=FitConfig(**{**vars(CFG), "iters": 50}), keeper=Keeper(path, every=None, final=True),
        clean=rgb32.flip(-1))  # scored against another reference: its oracle so far would be the wrong one
    keeper = Keeper(path, every=None)
    same(run(rgb32, keeper=keeper), reference)
    assert keeper.resumed_from is None

    path.write_bytes(b"not a checkpoint")
    lines.clear()
    same(run(rgb32, keeper=Keeper(path, every=None, notify=lines.append)), reference)
    assert "not a saved fit" in lines[0]


def test_ensemble_members_keep_their_states_and_member_0_continues_a_single_restore(rgb64_path, tmp_path,
                                                                                   sigterm_raises):
    """Member k of an ensemble is the fit with seed + k: a stopped single restore is its member 0, and a
    member that has ended is taken as it is (its final state is kept until the restore's folder goes)."""
    from test_ensemble import CFG, CPU, _problem
    from lipcli.ensemble import restore_ensemble
    from lipcli.resume import fit_state
    from lipcli.restore import Prior, restore

    problem, prior, cfg = _problem(rgb64_path), Prior(spec=tiny_spec()), replace(CFG, iters=60, early_stop=False)
    reference, _ = restore_ensemble(problem, prior, cfg, CPU, seed=5, n=3)
    states, lines = tmp_path / "out.png.lip-resume", []

    def interrupt(step):
        if step.iteration == 20:
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(Stop):  # the single restore of seed 5, stopped
        restore(problem, prior, cfg, CPU, 5, [interrupt], keeper=Keeper(fit_state(states, 5), None))
    restore_ensemble(problem, prior, cfg, CPU, seed=5, n=2, notify=lines.append, states=states)
    assert "continuing the fit saved in out.png.lip-resume/fit-5.safetensors at iteration 20" in lines
    lines.clear()
    merged, _ = restore_ensemble(problem, prior, cfg, CPU, seed=5, n=3, notify=lines.append, states=states)
    assert [line for line in lines if "taken as it is" in line] == [
        "the fit saved in out.png.lip-resume/fit-5.safetensors ended at iteration 60: taken as it is",
        "the fit saved in out.png.lip-resume/fit-6.safetensors ended at iteration 60: taken as it is"]
    assert torch.equal(merged.targets[0].final, reference.targets[0].final)
    assert torch.equal(merged.targets[0].stopped, reference.targets[0].stopped)


def test_a_state_that_cannot_be_written_stops_the_saving_not_the_fit(rgb32, tmp_path):
    (tmp_path / "file").write_text("a file where the state folder would go")
    lines = []
    result = run(rgb32, keeper=Keeper(tmp_path / "file" / "fit-0.safetensors", every=0, notify=lines.append))
    same(result, run(rgb32))
    assert len(lines) == 1 and "going on without saving it" in lines[0]


def test_a_median_of_means_fit_continues_the_partitions_it_would_have_drawn(rgb32, tmp_path, sigterm_raises):
    """The MOM loss (physics/cs_task.py) draws a partition of the measurements every iteration, from the
    operator's own stream: a continued fit draws the very partitions of the uninterrupted one."""
    from lipcli.physics.cs import GaussianCS
    from lipcli.physics.cs_task import MedianOfMeans

    def cs_run(**kw):
        op = MedianOfMeans(GaussianCS((3, 32, 32), 300, outliers=6, seed=1), 20)
        y = op(rgb32, torch.Generator().manual_seed(2))
        net, target, _ = make_run(tiny_spec(), rgb32, op=op)
        return fit(net, [replace(target, y=y)], FitConfig(iters=60, early_stop=False), **kw)

    path = tmp_path / "state"

    def interrupt(step):
        if step.iteration == 25:
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(Stop):
        cs_run(keeper=Keeper(path, every=None), callbacks=[interrupt])
    keeper = Keeper(path, every=None)
    continued = cs_run(keeper=keeper)
    assert keeper.resumed_from == 25
    same(continued, cs_run())


def test_clearing_removes_a_save_cut_short_and_nothing_else(tmp_path):
    """A SIGKILL during a save leaves files.atomic_path's temporary file: the folder still goes once the image is
    written. A file lip did not put there keeps the folder."""
    folder = tmp_path / "out.png.lip-resume"
    folder.mkdir()
    for name in ("fit-0.safetensors", ".fit-0.safetensors.k2j4.part.safetensors", "member-1.safetensors"):
        (folder / name).write_bytes(b"x")
    clear(folder)
    assert not folder.exists()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    clear(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_state_that_cannot_be_removed_is_a_warning_not_an_error(tmp_path, monkeypatch):
    """The image is stored when the state is cleared: a state file another user owns made a finished restore an
    internal error (exit 1) and dropped the rest of its batch. clear() gives the reason for a warning instead."""
    folder = tmp_path / "out.png.lip-resume"
    folder.mkdir()
    (folder / "fit-0.safetensors").write_bytes(b"x")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "unlink", refuse)
    reason = clear(folder)
    assert reason is not None and "could not remove the saved fit state" in reason and "Permission denied" in reason
    monkeypatch.undo()
    assert clear(folder) is None and not folder.exists()
