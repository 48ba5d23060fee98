"""`lip restore A B C --jobs N` (issue 16): several restores at once as worker processes, the cores divided.

The jobs write the very outputs, JSON lines (in input order) and --log events of a sequential run at the
same thread count; a failed job is one error line while the others finish; Ctrl-C stops every job and
leaves only complete outputs; the plan shares cores and memory. Tiny: an 8-channel net on 37-64 px images.
"""
from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import allocator, device as devices, jobs
from lipcli.cli import app, restore as restore_cli
from lipcli.errors import LipError
from prune_helpers import NARROW_YAML, write_picture
from test_interrupt import finish, lip as lip_process, wait_for
from test_transfer_workers import _processes_mentioning

DATA = Path(__file__).parent / "data"
RUN = ["--simulate", "--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--seed", "2"]
TIMING = ("seconds", "time")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    monkeypatch.delenv("LIP_DEBUG", raising=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("jobs")
    shutil.copy(DATA / "astronaut_64.png", d / "astro.png")
    shutil.copy(DATA / "cameraman_53x37.png", d / "camera.png")  # gray, odd size
    write_picture(d / "waves.png", 48, 40, seed=3)
    (d / "narrow.yaml").write_text(NARROW_YAML)
    return d


def lip(folder: Path, *args: str):
    """`lip restore` in-process (the parent); its jobs are real processes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        result = CliRunner().invoke(app, ["restore", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def test_jobs_write_what_a_sequential_run_writes(folder):
    inputs = ["astro.png", "camera.png", "waves.png"]
    runs = {}
    for n in ("1", "2"):
        result = lip(folder, *inputs, *RUN, "--iters", "25", "--jobs", n, "-o", f"out{n}", "--json",
                     "--log", f"run{n}.log")
        assert result.exit_code == 0, result.output
        log = [json.loads(line) for line in (folder / f"run{n}.log").read_text().splitlines()]
        runs[n] = [json.loads(line) for line in result.stdout.splitlines()], log, result.stderr
    (seq, seq_log, _), (par, par_log, par_err) = runs["1"], runs["2"]
    assert "3 images, 2 at once (1 thread each" in par_err
    for name in inputs:  # the very same pixels
        assert (folder / "out1" / name).read_bytes() == (folder / "out2" / name).read_bytes(), name
        assert f"{name} -> out2/{name}: 25 iterations" in par_err  # one line per finished image
    assert [r["input"] for r in par] == inputs  # input order, whichever job finished first
    assert [without_timing(r) | {"output": ""} for r in par] == [without_timing(r) | {"output": ""} for r in seq]
    assert {r["threads"] for r in par + seq} == {1}
    # --log: the same events (each job's own, with its time), interleaved between the jobs.
    key = lambda e: json.dumps(without_timing(e) | {"output": ""}, sort_keys=True)  # noqa: E731
    assert sorted(map(key, par_log)) == sorted(map(key, seq_log))
    assert sum(e["event"] == "step" for e in par_log) == 75
    assert {e["total"] for e in par_log if e["event"] == "step"} == {25}  # the cap the workers' display counts to


def _with_a_broken_input(folder: Path, tmp_path: Path) -> list[str]:
    (tmp_path / "broken.png").write_bytes((folder / "astro.png").read_bytes()[:200])  # truncated
    for name in ("astro.png", "waves.png", "camera.png", "narrow.yaml"):
        shutil.copy(folder / name, tmp_path)
    return ["astro.png", "broken.png", "waves.png", "camera.png"]


def test_an_unreadable_input_is_refused_before_the_jobs_share_out_the_others(folder, tmp_path):
    """It once went to a job, whose failure put the JSON lines out of input order."""
    inputs = _with_a_broken_input(folder, tmp_path)
    result = lip(tmp_path, *inputs, *RUN, "--iters", "5", "--jobs", "2", "-o", "out", "--json")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("lip: error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert "cannot read broken.png" in errors[0] and "job" not in errors[0], errors
    assert "3 images, 2 at once" in result.stderr
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == ["astro.png", "waves.png",
                                                                                  "camera.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astro.png", "camera.png", "waves.png"]


def test_a_failed_job_is_one_error_line_and_the_others_finish(folder, tmp_path, monkeypatch):
    inputs = _with_a_broken_input(folder, tmp_path)[:3]
    monkeypatch.setattr(restore_cli, "_read_ahead", lambda *args: {})  # the job finds the broken file itself
    result = lip(tmp_path, *inputs, *RUN, "--iters", "5", "--jobs", "2", "-o", "out")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("lip: error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert "cannot read broken.png" in errors[0] and "(job 2/2; the other jobs finished)" in errors[0], errors
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astro.png", "waves.png"]


@pytest.mark.parametrize("n", ["1", "2"])
def test_skip_existing_restores_only_what_is_missing(folder, n):
    """Re-running an interrupted batch: an input whose output exists is left and reported as skipped, in
    input order, whether this process or worker processes restore the rest; the jobs share out only the
    missing ones (inputs 1 and 3 written: one job each for 0 and 2, not job 1 idle with both skips)."""
    out = folder / f"skip{n}"
    out.mkdir()
    shutil.copy(folder / "astro.png", folder / "again.png")
    for name in ("camera.png", "again.png"):
        (out / name).write_bytes(b"from an earlier run")
    result = lip(folder, "astro.png", "camera.png", "waves.png", "again.png", *RUN, "--iters", "3", "--jobs", n,
                 "-o", out.name, "--json", "--skip-existing")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"] for r in rows] == ["astro.png", "camera.png", "waves.png", "again.png"]
    assert rows[1] == {"input": "camera.png", "output": f"{out.name}/camera.png", "skipped": "output exists"}
    assert rows[3] == {"input": "again.png", "output": f"{out.name}/again.png", "skipped": "output exists"}
    assert "iterations" in rows[0] and "iterations" in rows[2]
    assert (out / "camera.png").read_bytes() == (out / "again.png").read_bytes() == b"from an earlier run"
    assert f"camera.png -> {out.name}/camera.png: skipped, output exists (--skip-existing)" in result.stderr
    assert ("lip restore: 2 images, 2 at once" in result.stderr) == (n == "2"), result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["again.png", "astro.png", "camera.png", "waves.png"]


def test_shard_takes_every_nth_input_and_composes_with_jobs(folder):
    result = lip(folder, "astro.png", "camera.png", "waves.png", *RUN, "--iters", "3", "--shard", "1/2",
                 "-o", "shard", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == ["camera.png"]
    assert jobs.job_args(["a", "--jobs", "2", "--shard=1/2", "--json", "--log", "x", "b"], [1, 3, 5], 1, 2, 3) == [
        "restore", "--inputs-at", "3", "--jobs", "1", "--threads", "3", "--log", "-", "a", "b"]


def test_ctrl_c_stops_every_job_and_leaves_only_whole_outputs(folder):
    inputs = [f"in{i}.png" for i in range(4)]
    for name in inputs:
        shutil.copy(folder / "astro.png", folder / name)
    proc = lip_process(folder, "restore", *inputs, *RUN, "--iters", "3000", "--no-early-stop", "--jobs", "2",
                       "-o", "jobs-stopped", "--json", "--log", "stopped.log")
    log = folder / "stopped.log"

    def both_running() -> bool:
        steps = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return len({e["input"] for e in steps if e["event"] == "step"}) == 2

    wait_for(proc, both_running, "both jobs were fitting")
    proc.send_signal(signal.SIGINT)
    code, stdout, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1] == "lip: interrupted" and "stopped the 2 jobs" in lines[-2], err
    assert _processes_mentioning("jobs-stopped", folder) == []  # the parent waited for its jobs
    kept = sorted((folder / "jobs-stopped").iterdir()) if (folder / "jobs-stopped").exists() else []
    written = [p for p in kept if p.suffix == ".png"]
    assert [p.name for p in written] == [json.loads(line)["output"].split("/")[-1] for line in stdout.splitlines()]
    # The two jobs stopped midway saved their fits' state to continue from (lipcli/resume.py), and say so.
    assert len([p for p in kept if p.name.endswith(".png.lip-resume")]) == 2 == len(kept) - len(written)
    assert "kept their state beside their outputs (2): the same command with --skip-existing continues them" in lines[-2]
    for path in written:  # only whole images, no temporary file
        with PILImage.open(path) as im:
            im.load()
    assert not list(folder.rglob(".*.part*"))


@pytest.fixture
def machine(monkeypatch):
    """A 4-core CPU, quiet, 8 GiB free; tests change one thing."""
    monkeypatch.setattr(devices, "usable_cores", lambda: 4)
    monkeypatch.setattr(devices, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(devices, "available_memory", lambda dev: 8 * 2**30)
    monkeypatch.setattr(allocator, "peak_factor", lambda: 1.0)  # glibc's defaults (test_allocator: kept memory)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)


CPU, GPU = torch.device("cpu"), torch.device("cuda")
SMALL = lambda: 2**28  # noqa: E731  (a 256 MiB restore)


@pytest.mark.parametrize("want, threads, count, dev, expected", [
    (None, None, 8, CPU, (4, 1)),      # auto: a thread per job
    (None, None, 3, CPU, (3, 1)),      # at most a job per input
    (None, None, 1, CPU, None),        # one input: restored here
    (1, None, 8, CPU, None),           # --jobs 1: one after the other, here
    (None, None, 8, GPU, None),        # auto on a GPU: one job
    (2, None, 8, CPU, (2, 2)),         # the cores shared
    (5, None, 2, CPU, (2, 2)),         # never more jobs than inputs
    (None, "2", 8, CPU, (2, 2)),       # --threads is each job's
    (None, "3", 8, CPU, None),         # one 3-thread job fits in 4 cores: restored here
])
def test_plan_shares_the_cores(machine, want, threads, count, dev, expected):
    assert jobs.plan(want, threads, count, dev, SMALL, print) == expected


def test_plan_runs_no_more_jobs_than_the_memory_holds(machine):
    notes: list[str] = []
    assert jobs.plan(None, None, 8, CPU, lambda: 3 * 2**30, notes.append) == (2, 2) and notes == []
    assert jobs.plan(4, None, 8, CPU, lambda: 3 * 2**30, notes.append) == (2, 2)
    assert len(notes) == 1 and "running 2 at once" in notes[0]
    assert jobs.plan(None, None, 8, CPU, lambda: 5 * 2**30, notes.append) is None  # one at a time fits


@pytest.mark.parametrize("bad", ["0", "many", "-2"])
def test_bad_job_counts_are_refused(bad):
    with pytest.raises(LipError, match="--jobs"):
        jobs.parse_jobs(bad)
