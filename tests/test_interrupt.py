"""Interruptions of real `lip` processes: Ctrl-C (SIGINT) and SIGTERM stop cleanly, keep every finished
round (prune) or row (transfer), say how to continue, exit 130 / 143, and continuing gives exactly the
result of an uninterrupted run (same seed, one thread, fp32).

Each test starts `python -m lipcli ...` as a subprocess, polls until the first round's artifact (or
the first row) is on disk, sends the signal, and later resumes. A narrow net (8 channels, from a YAML
config) on a 64x64 image keeps every process to a few seconds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lipcli import artifact
from lipcli.transfer.rows import read_rows, row_key
from prune_helpers import NARROW_YAML, make_mask, write_picture

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 120  # seconds for any one process: far above what they need, so a hang fails, not blocks


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("LIP_DEVICE", "LIP_DEBUG")}
    e["SOURCE_DATE_EPOCH"] = "1700000000"
    return e


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("interrupt")
    write_picture(d / "img.png", 64, 64, seed=0)
    (d / "narrow.yaml").write_text(NARROW_YAML)
    make_mask(d / "A.safetensors", rounds=2)
    return d


def _interruptible() -> None:
    # A test runner started in the background inherits SIGINT as ignored (POSIX), and Python keeps an
    # ignored SIGINT ignored: give the child the default disposition, as a terminal would (SIGHUP too: a runner
    # under nohup ignores it).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def lip(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lipcli", *args], cwd=folder, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"lip did not finish within {TIMEOUT}s: {err[-2000:]}")
    return proc.returncode, out, err


def wait_for(proc: subprocess.Popen, ready, what: str) -> None:
    """Poll until `ready()` holds; fail if the process ends first (nothing left to interrupt)."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"lip ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# The two ways to stop a process, with the exit code and last line each gives.
SIGNALS = pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated")], ids=["SIGINT", "SIGTERM"])
# ... and a closed terminal's (or lost ssh session's) hangup, checked where it matters most: a restore's fit
WITH_HANGUP = pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                                          (signal.SIGTERM, 143, "terminated"),
                                                          (signal.SIGHUP, 129, "hung up")],
                                      ids=["SIGINT", "SIGTERM", "SIGHUP"])


def stop(proc: subprocess.Popen, sig: int, code: int, word: str) -> list[str]:
    """Send `sig` and wait: the exit code and last line it gives, no traceback, nothing on stdout; the
    stderr lines, for what the test checks next."""
    proc.send_signal(sig)
    got, stdout, err = finish(proc)
    assert got == code, err
    assert "Traceback" not in err and stdout == ""
    lines = err.strip().splitlines()
    assert lines[-1] == f"lip: {word}", err
    return lines


@WITH_HANGUP
def test_a_signal_while_the_commands_load_is_one_line(folder, sig, code, word):
    """A Ctrl-C while torch imports (the first half second) used to be swallowed by the import machinery or
    end in a traceback, and a SIGTERM ended the process without a word; both are held until the commands have
    loaded (lipcli/launch.py)."""
    for wait in (0.3, 0.9):  # while lip imports torch; while the command is built (a traceback, or no word, there)
        proc = lip(folder, "restore", "img.png", "--simulate", "--iters", "5", "-o", f"early-{sig.name}.png")
        time.sleep(wait)
        stop(proc, sig, code, word)
        assert not (folder / f"early-{sig.name}.png").exists()


# ---------------------------------------------------------------- prune

PRUNE = ["prune", "img.png", "--simulate", "--config", "narrow.yaml", "--rounds", "4", "--iters", "100",
         "--threads", "1", "--device", "cpu", "--seed", "0"]


class Reference:
    """The uninterrupted run, started at once and waited for when first needed (it runs meanwhile)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.proc, self.art = folder, lip(folder, *PRUNE, "-o", "full.safetensors"), None

    def get(self) -> artifact.Artifact:
        if self.art is None:
            code, _, err = finish(self.proc)
            assert code == 0, err
            self.art = artifact.load(self.folder / "full.safetensors")
        return self.art


@pytest.fixture(scope="module")
def uninterrupted(folder) -> Reference:
    ref = Reference(folder)
    yield ref
    if ref.proc.poll() is None:
        ref.proc.kill()
        ref.proc.communicate()


def _rounds_on_disk(path: Path) -> int:
    if not path.exists():
        return 0
    return artifact.load(path).rounds  # saved atomically: whatever exists is complete


@SIGNALS
def test_prune_stops_cleanly_and_resumes_to_the_same_masks(folder, uninterrupted, sig, code, word):
    out = folder / f"part-{sig.name}.safetensors"
    proc = lip(folder, *PRUNE, "-o", out.name)
    wait_for(proc, lambda: _rounds_on_disk(out) >= 1, "the first round was saved")
    lines = stop(proc, sig, code, word)
    assert f"--resume {out.name}" in lines[-2], lines  # says how to continue
    partial = artifact.load(out)  # still a complete, valid artifact
    assert 1 <= partial.rounds <= 4
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{out.name}")]  # no temp file left

    got, _, err = finish(lip(folder, *PRUNE, "-o", out.name, "--resume", out.name))
    assert got == 0, err
    final, uninterrupted = artifact.load(out), uninterrupted.get()
    assert final.rounds == uninterrupted.rounds == 4
    assert final.prune_round.keys() == uninterrupted.prune_round.keys()
    for name, r in uninterrupted.prune_round.items():
        assert torch.equal(final.prune_round[name], r), name
    for name, w in uninterrupted.theta0.items():
        assert torch.equal(final.theta0[name], w), name
    assert final.meta["rounds"] == uninterrupted.meta["rounds"]  # losses and PSNRs, bit for bit
    assert final.recommended_round == uninterrupted.recommended_round
    assert out.read_bytes() == (folder / "full.safetensors").read_bytes()  # the very same file


# ---------------------------------------------------------------- transfer

TRANSFER = ["transfer", "img.png", "--mask", "A.safetensors", "--rounds", "1,2", "--baselines", "dense,random",
            "--iters", "150", "--config", "narrow.yaml", "--precision", "fp32", "--threads", "1", "--device", "cpu"]
TIMING = ("seconds",)


def _rows(path: Path) -> list[dict]:
    return read_rows(path) if path.exists() else []


def _comparable(rows: list[dict]) -> dict:
    return {json.dumps(row_key(r)): {k: v for k, v in r.items() if k not in TIMING} for r in rows}


def test_transfer_interrupted_after_a_row_continues_without_redoing_it(folder):
    full = lip(folder, *TRANSFER, "--out", "full")  # the reference runs meanwhile
    rows = folder / "part" / "results.jsonl"
    proc = lip(folder, *TRANSFER, "--out", "part")
    wait_for(proc, lambda: len(_rows(rows)) >= 1, "the first row was written")
    proc.send_signal(signal.SIGINT)
    got, _, err = finish(proc)
    assert got == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == "lip: interrupted" and "Continue with the same command" in lines[-2], err
    kept = _rows(rows)
    assert 1 <= len(kept) < 5

    got, _, err = finish(lip(folder, *TRANSFER, "--out", "part"))
    assert got == 0, err
    assert f"{len(kept)} already in" in err  # the finished rows were not run again
    code, _, err = finish(full)
    assert code == 0, err
    reference = _rows(folder / "full" / "results.jsonl")
    assert len(reference) == 5  # dense, then mask and random at rounds 1 and 2
    final = _rows(rows)
    assert final[: len(kept)] == kept
    assert _comparable(final) == _comparable(reference)


# ---------------------------------------------------------------- restore

RESTORE = ["restore", "img.png", "--simulate", "--config", "narrow.yaml", "--iters", "300", "--threads", "1",
           "--device", "cpu", "--seed", "0", "--json"]


def _steps(log: Path) -> int:
    return log.read_text().count('"step"') if log.exists() else 0


@WITH_HANGUP
def test_restore_stopped_mid_fit_continues_to_the_same_image(folder, sig, code, word):
    full = lip(folder, *RESTORE, "-o", f"full-{sig.name}.png")  # the reference runs meanwhile
    out, log = folder / f"part-{sig.name}.png", folder / f"part-{sig.name}.jsonl"
    state = folder / f"{out.name}.lip-resume"
    proc = lip(folder, *RESTORE, "-o", out.name, "--log", log.name, "--resume-every", "0")
    wait_for(proc, lambda: _steps(log) >= 30, "30 iterations were fitted")
    lines = stop(proc, sig, code, word)
    assert "Run the same command again" in lines[-2], lines
    assert state.is_dir() and not out.exists()  # no partial image, the fit's state kept
    stopped_at = _steps(log)

    got, stdout, err = finish(lip(folder, *RESTORE, "-o", out.name, "--log", log.name))
    assert got == 0, err
    assert f"continuing the fit saved in {state.name}/fit-0.safetensors at iteration {stopped_at}" in err
    assert not state.exists()
    report = json.loads(stdout)
    assert report["resumed_from"] == stopped_at
    code_full, stdout_full, err_full = finish(full)
    assert code_full == 0, err_full
    reference = json.loads(stdout_full)
    assert out.read_bytes() == (folder / f"full-{sig.name}.png").read_bytes()  # the very same image
    for key in ("iterations", "stopped_at", "psnr_final", "psnr_stopped", "oracle_best_psnr", "oracle_best_iter"):
        assert report[key] == reference[key], key


def test_a_hangup_under_nohup_is_ignored(folder):
    """`nohup lip restore ...` ignores SIGHUP so that a run outlives its terminal: lip keeps it ignored (its
    handlers and the fit's signal hold take only the signals that are not)."""
    def hangup_ignored() -> None:
        _interruptible()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    log = folder / "nohup.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "lipcli", *RESTORE, "-o", "nohup.png", "--log", log.name],
                            cwd=folder, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=hangup_ignored)
    wait_for(proc, lambda: _steps(log) >= 30, "30 iterations were fitted")
    proc.send_signal(signal.SIGHUP)
    got, _, err = finish(proc)
    assert got == 0 and (folder / "nohup.png").is_file(), err


# ---------------------------------------------------------------- cs --prior dip

CS = ["cs", "img.png", "--simulate", "--prior", "dip", "--mask", "A.safetensors", "--round", "1", "-m", "400",
      "--outliers", "8", "--iters", "300", "--threads", "1", "--device", "cpu", "--seed", "0", "--json"]


def test_cs_dip_stopped_mid_fit_continues_to_the_same_image(folder):
    """CS-DIP fits like a restore (median-of-means loss included): stopped, its state is kept beside the
    output, and the same command continues it to the uninterrupted run's image."""
    full = lip(folder, *CS, "-o", "cs-full.png")
    out = folder / "cs-part.png"
    state = folder / f"{out.name}.lip-resume"
    proc = lip(folder, *CS, "-o", out.name, "--resume-every", "0.5")
    wait_for(proc, lambda: (state / "fit-0.safetensors").is_file(), "the first save")
    lines = stop(proc, signal.SIGTERM, 143, "terminated")
    assert "Run the same command again" in lines[-2], lines
    assert state.is_dir() and not out.exists()

    got, stdout, err = finish(lip(folder, *CS, "-o", out.name))
    assert got == 0, err
    assert f"continuing the fit saved in {state.name}/fit-0.safetensors at iteration" in err
    assert not state.exists()
    assert 0 < json.loads(stdout)["resumed_from"] < 300
    code_full, _, err_full = finish(full)
    assert code_full == 0, err_full
    assert out.read_bytes() == (folder / "cs-full.png").read_bytes()


# ---------------------------------------------------------------- train-generator

def _generator_args(folder: Path) -> list[str]:
    digits = folder / "digits"
    if not digits.is_dir():
        digits.mkdir()
        rng = np.random.default_rng(0)
        for i in range(48):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(digits / f"{i}.png")
    return ["train-generator", "--data", "digits", "--epochs", "40", "--batch", "2", "--nz", "4", "--ngf", "4",
            "--ndf", "4", "--size", "8", "--seed", "1", "--device", "cpu", "--threads", "1"]


@SIGNALS
def test_train_generator_stopped_mid_epoch_continues_to_the_same_generator(folder, sig, code, word):
    """Stopped, train-generator keeps its finished epochs' generator and the training's state beside it; the
    same command continues between the two batches it stopped at, to the uninterrupted run's weights."""
    args = _generator_args(folder)
    full = lip(folder, *args, "-o", f"g-full-{sig.name}.safetensors")
    out = folder / f"g-part-{sig.name}.safetensors"
    state = folder / f"{out.name}.lip-resume"
    proc = lip(folder, *args, "-o", out.name, "--resume-every", "0")
    wait_for(proc, lambda: out.is_file(), "the first epoch was written")
    lines = stop(proc, sig, code, word)
    assert "of 40; " in lines[-2] and "the fit's state is kept in" in lines[-2], lines
    assert "Run the same command again to continue it" in lines[-2], lines
    assert (state / "fit-1.safetensors").is_file()

    got, _, err = finish(lip(folder, *args, "-o", out.name))
    assert got == 0, err
    assert f"continuing the fit saved in {state.name}/fit-1.safetensors at epoch " in err and " of 24" in err
    assert not state.exists()
    code_full, _, err_full = finish(full)
    assert code_full == 0, err_full
    final, reference = artifact.load(out), artifact.load(folder / f"g-full-{sig.name}.safetensors")
    assert final.meta["history"] == reference.meta["history"] and final.meta["epochs_done"] == 40
    for name, w in reference.theta0.items():
        assert torch.equal(final.theta0[name], w), name
