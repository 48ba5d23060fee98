"""Concurrent lip fits share the cores (issue 16): an open thread count takes its share of what fixed counts
leave, gives it back when the others end, and a fixed --threads is never touched."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lipcli import device, sharing
from lipcli.sharing import Claim, share_of

ROOT = Path(__file__).parent.parent


def claim(pid: int, threads: int | None, cpus: tuple[int, ...] = (0, 1, 2, 3)) -> Claim:
    return Claim(pid, "1", cpus, threads)


def test_open_fits_split_what_fixed_fits_leave():
    me = claim(10, None)
    assert share_of(me, [], cores=4, budget=4) == 4
    assert share_of(me, [claim(11, None)], cores=4, budget=4) == 2
    assert share_of(me, [claim(11, 1)], cores=4, budget=4) == 3
    assert share_of(me, [claim(11, 4)], cores=4, budget=4) == 1  # never below one thread
    assert share_of(me, [claim(11, None), claim(12, None)], cores=4, budget=4) == 2  # lowest pid takes the rest
    assert share_of(claim(13, None), [claim(11, None), claim(12, None)], cores=4, budget=4) == 1
    assert share_of(me, [claim(11, None)], cores=4, budget=1) == 1  # never above what it chose
    # four SLURM tasks of 8 CPUs on a 32-core node that does not bind them: each keeps its 8
    assert share_of(me, [claim(11, None), claim(12, None), claim(13, None)], cores=32, budget=8) == 8


def test_the_cores_shared_are_the_machines_not_a_per_process_limit(monkeypatch):
    """OMP_NUM_THREADS / SLURM_CPUS_PER_TASK cap one process; the affinity mask and the quota are shared."""
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: set(range(32)))
    monkeypatch.setattr(device, "_cgroup_quota", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 32)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(device, "busy_cores", lambda: 0.0)
    assert device.set_threads(None) == 8
    assert (sharing._policy.budget, sharing._policy.cores, sharing._policy.open) == (8, 32, True)
    monkeypatch.setattr(device, "_cgroup_quota", lambda: 2.0)  # a container of 2 CPUs: both processes in it
    device.set_threads(None)
    assert (sharing._policy.budget, sharing._policy.cores) == (2, 2)


def test_fits_on_other_cpus_do_not_count():
    me = claim(10, None, cpus=(0, 1))
    assert share_of(me, [claim(11, None, cpus=(2, 3)), claim(12, 2, cpus=(2, 3))], cores=2, budget=2) == 2
    assert share_of(me, [claim(11, None, cpus=(1, 2))], cores=2, budget=2) == 1
    # no affinity on the platform (empty CPU sets): every fit competes, as beside() counts them
    assert share_of(claim(10, None, cpus=()), [claim(11, None, cpus=())], cores=2, budget=2) == 1


@pytest.fixture
def other_process():
    """A live process that is not a lip fit, to register a claim for."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def register(pid: int, threads: int | None) -> Path:
    path = sharing.folder() / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    cpus = sorted(os.sched_getaffinity(0))
    path.write_text(json.dumps({"pid": pid, "started": sharing._started(pid), "cpus": cpus, "threads": threads}))
    return path


def test_dead_fits_are_forgotten_and_their_files_removed(other_process, tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    live = register(other_process.pid, 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = register(int(dead.stdout), None)
    stale.write_text(stale.read_text().replace('"started": null', '"started": "1"'))
    (tmp_path / "junk.json").write_text("{not json")
    assert [c.pid for c in sharing.running()] == [other_process.pid]
    assert live.exists() and not stale.exists()


def test_an_open_fit_takes_its_share_and_gives_it_back(other_process, tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    monkeypatch.setattr(sharing, "RESCAN_SECONDS", 0.0)
    cores = len(os.sched_getaffinity(0))
    sharing.set_policy(cores, cores, open_count=True)
    torch.set_num_threads(cores)
    other = register(other_process.pid, cores)  # a fixed fit holding every core
    share = sharing.Share(True)
    mine = tmp_path / f"{os.getpid()}.json"
    assert json.loads(mine.read_text())["threads"] is None
    share.poll(0)
    assert torch.get_num_threads() == 1
    other.unlink()  # it ended
    share.poll(5)
    assert torch.get_num_threads() == cores
    assert share.changes == ([(0, 1), (5, cores)] if cores > 1 else [])
    sharing.Share(True)  # the next fit of this process: still the one registration
    assert [p.name for p in tmp_path.glob("*.json")] == [mine.name]
    sharing.unregister()  # at exit
    assert not mine.exists()


def test_a_fixed_count_is_kept_but_seen_by_the_others(other_process, tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    sharing.set_policy(1, 2, open_count=False)
    torch.set_num_threads(1)
    register(other_process.pid, None)
    share = sharing.Share(True)
    assert json.loads((tmp_path / f"{os.getpid()}.json").read_text())["threads"] == 1
    share.poll(0)
    assert share.changes == [] and torch.get_num_threads() == 1


def test_no_policy_or_another_device_shares_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    share = sharing.Share(False)
    share.poll(0)
    assert share.claim is None and list(tmp_path.iterdir()) == []


def test_the_default_says_it_shares_with_a_running_fit(other_process, tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    monkeypatch.setattr(device, "busy_cores", lambda: 0.0)
    register(other_process.pid, None)
    lines: list[str] = []
    device.thread_budget(None, lines.append)
    assert len(lines) == 1 and "1 other lip fit running here: sharing the cores" in lines[0]


def test_a_restore_beside_another_fit_reports_the_threads_it_ran_on(other_process, tmp_path, rgb64_path, monkeypatch):
    """The real CLI, default threads, one fixed fit on every core beside it: it runs on one thread and says so."""
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cores = device.usable_cores()
    if cores < 2:
        pytest.skip("one usable core: nothing to share")
    register(other_process.pid, cores)
    done = subprocess.run([sys.executable, "-m", "lipcli", "restore", str(rgb64_path), "--simulate", "--iters", "5",
                           "--config", "fast", "--no-early-stop", "--json", "-o", str(tmp_path / "out.png")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["threads"] == 1 and report.get("threads_shared") == [[0, 1]], done.stderr
    assert "other lip fit running here" in done.stderr
    assert [p.name for p in tmp_path.glob("*.json")] == [f"{other_process.pid}.json"]  # its own went at exit


def test_a_fixed_count_over_what_fixed_fits_hold_says_so(other_process, tmp_path, monkeypatch):
    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    cores = device.shared_cores()  # the machine's, not this process's (OMP_NUM_THREADS=1 leaves the other core)
    register(other_process.pid, cores)
    lines: list[str] = []
    assert device.thread_budget("1", lines.append) == 1
    assert len(lines) == 1 and f"other lip fits hold {cores} of {cores} cores" in lines[0]
    register(other_process.pid, None)  # an open fit makes room by itself
    lines.clear()
    device.thread_budget("1", lines.append)
    assert lines == []


def test_the_generator_prior_s_latent_search_takes_its_share(other_process, tmp_path, monkeypatch):
    """`lip cs --prior gan` optimises latents in its own loops (cs.solve): they poll the share as fit() does."""
    from lipcli import gan, generators
    from lipcli.cs import CSConfig, solve
    from lipcli.physics import GaussianCS

    monkeypatch.setenv("LIP_SHARE_DIR", str(tmp_path))
    monkeypatch.setattr(sharing, "RESCAN_SECONDS", 0.0)
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one usable core: nothing to share")
    sharing.set_policy(cores, cores, open_count=True)
    torch.set_num_threads(cores)
    register(other_process.pid, cores)  # a fixed fit holding every core
    g, _, _ = generators.load(gan.GENERATOR)  # the bundled MNIST generator (32x32 gray)
    op = GaussianCS((1, 32, 32), 50, seed=1)
    y = op(torch.rand(1, 1, 32, 32), torch.Generator().manual_seed(0))
    seen: list[int] = []
    solve(g, op, y, CSConfig(solver="mom", iters=3, restarts=1, batch_size=5, seed=0),
          lambda it, loss: seen.append(torch.get_num_threads()))
    assert seen == [1, 1, 1]
