"""`lip transfer --device A,B`: one worker process per device, each a `--shard i/n`, merged by the parent.

Tested with `cpu,cpu` (repeats are allowed; this machine has no GPU): the same rows and PSNRs as one
process, a failed worker reported in one line while the other finishes, a re-run resuming from the
shard files, Ctrl-C stopping the workers, and usage errors as one line. Same tiny grid as
test_transfer.py (8-channel 5-level hourglass, 64x64 crop); every worker runs at one thread.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from lipcli import device as devices
from lipcli.errors import LipError
from lipcli.transfer import workers
from lipcli.transfer.rows import read_rows, row_key
from test_interrupt import finish, wait_for
from test_interrupt import lip as lip_process
from test_transfer import grid_data, keys, lip, ok

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return grid_data(tmp_path_factory.mktemp("workers"))


RUN = ["--precision", "fp32", "--config", "fast", "--threads", "1"]
SCORES = ("psnr_final", "psnr_stopped", "oracle_best_psnr", "ssim_stopped")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    monkeypatch.delenv("LIP_DEBUG", raising=False)


def scores(rows: list[dict]) -> dict[str, tuple]:
    return {json.dumps(row_key(r)): tuple(r[k] for k in SCORES) for r in rows}


def test_two_workers_fail_resume_and_equal_one_process(data, tmp_path):
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--rounds", "1,3", "--baselines", "dense,random",
            *RUN]
    ok(lip(*grid, "--iters", "10", "--device", "cpu", "--out", tmp_path / "whole"))
    whole = read_rows(tmp_path / "whole" / "results.jsonl")
    out = tmp_path / "two"
    # Shard 1 already holds rows made with other settings: its worker refuses to mix them and fails.
    ok(lip(*grid, "--iters", "11", "--device", "cpu", "--shard", "1/2", "--out", out))
    failed = lip(*grid, "--iters", "10", "--device", "cpu,cpu", "--out", out)
    assert failed.exit_code == 1, failed.output
    lines = failed.stderr.strip().splitlines()
    assert lines[-1].startswith("lip: error: 1 of 2 workers failed (shard 1/2;"), failed.stderr
    assert sum(line.startswith("lip: error:") for line in lines) == 1
    assert any(line.startswith("worker 1 (shard 1/2 on cpu): failed (exit 2)") and "fit.iters 11 -> 10" in line
               for line in lines), failed.stderr
    assert "worker 0 (shard 0/2 on cpu): done" in failed.stderr
    finished = read_rows(out / "results.shard-0-of-2.jsonl")
    assert len(finished) == 3 and not (out / "summary.csv").exists()

    (out / "results.shard-1-of-2.jsonl").unlink()
    again = ok(lip(*grid, "--iters", "10", "--device", "cpu,cpu", "--out", out, "--json"))
    assert "3 already in" in (out / "results.shard-0-of-2.log").read_text()  # worker 0 resumed
    assert read_rows(out / "results.shard-0-of-2.jsonl") == finished
    merged = read_rows(out / "results.jsonl")
    assert scores(merged) == scores(whole)  # seeded cells: the same numbers wherever they ran
    assert keys(json.loads(line) for line in again.stdout.splitlines()) == keys(whole)
    assert (out / "summary.csv").is_file() and "Transfer summary" in again.stderr


def _processes_mentioning(text: str, cwd: Path) -> list[int]:
    """Processes started in `cwd` whose command line holds `text` (other test runs on a shared machine start
    the same command lines in their own folders)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace") \
                    and (entry / "cwd").resolve() == cwd.resolve():
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc and POSIX signals")
def test_ctrl_c_stops_the_workers_and_keeps_their_rows(data):
    out = data / "workers-ctrl-c"
    proc = lip_process(data, "transfer", "--mask", "A.safetensors", "astro.png", "--rounds", "1,2", "--baselines",
                        "dense,random", "--iters", "150", *RUN, "--device", "cpu,cpu", "--out", out.name)
    shards = [out / f"results.shard-{i}-of-2.jsonl" for i in (0, 1)]
    wait_for(proc, lambda: any(p.exists() and read_rows(p) for p in shards), "a worker wrote a row")
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1] == "lip: interrupted" and "Continue with the same command" in lines[-2], err
    assert _processes_mentioning(out.name, data) == []  # the parent waited for its workers
    logs = [p.with_suffix(".log").read_text().strip().splitlines()[-1] for p in shards]
    assert "lip: terminated" in logs  # stopped by SIGTERM, saving what they had
    assert 1 <= sum(len(read_rows(p)) for p in shards if p.exists()) < 5


def test_worker_command_lines():
    args = ["--mask", "A.safetensors", "--device", "cuda:0,cuda:1", "--json", "--threads=4", "x.png", "--curves",
            "--plot-format", "pdf", "--plot-metric=oracle", "--device=cpu,cpu", "--out", "o", "--", "--json"]
    assert workers.worker_args(args, "1/2", "cuda:1", 2) == [
        "--shard", "1/2", "--device", "cuda:1", "--threads", "2", "--mask", "A.safetensors", "x.png", "--out", "o",
        "--", "--json"]


def test_devices_and_thread_shares(monkeypatch):
    assert workers.parse_devices("cpu") is None
    assert workers.parse_devices(" cpu, CPU ") == ["cpu", "cpu"]
    with pytest.raises(LipError, match="empty entry"):
        workers.parse_devices("cpu,,cpu")
    monkeypatch.setattr(devices, "usable_cores", lambda: 8)
    monkeypatch.setattr(devices, "busy_cores", lambda: 2.0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    each = lambda threads, n: devices.split_cores(threads, n, n)[1]  # noqa: E731  (as workers.run does)
    assert [each(None, n) for n in (1, 3, 16)] == [8, 2, 1]
    assert [each("auto", n) for n in (1, 3)] == [6, 2]  # the 6 free cores shared
    assert each(5, 3) == 5 and each("5", 3) == 5


@pytest.mark.parametrize("device, extra, fragment", [
    ("cpu,cpu", ["--shard", "0/2"], "drop --shard 0/2"),
    ("cpu,gpu", [], "unknown device 'gpu'"),
    ("cpu,", [], "empty entry"),
])
def test_bad_device_lists_are_one_line_exit_2(data, tmp_path, device, extra, fragment):
    result = lip("--mask", data / "A.safetensors", data / "astro.png", "--out", tmp_path / "o", "--iters", "10",
                 *RUN, "--device", device, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lip: error:") and fragment in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


def test_more_devices_than_runs_start_one_worker_per_run(data, tmp_path):
    """A 1-run grid on three devices: one worker (the others would only load torch, and name shard files they never
    write, which the merge then called missing)."""
    out = tmp_path / "o"
    result = ok(lip("--mask", data / "A.safetensors", data / "astro.png", "--rounds", "1", "--baselines", "none",
                    "--iters", "3", *RUN, "--device", "cpu,cpu,cpu", "--out", out))
    assert "1 run for 3 devices: using the first 1" in result.stderr and "worker 1" not in result.stderr
    assert sorted(p.name for p in out.glob("results.shard-*")) == ["results.shard-0-of-1.jsonl",
                                                                  "results.shard-0-of-1.log"]
    assert "no file for shards" not in result.stderr and len(read_rows(out / "results.jsonl")) == 1
