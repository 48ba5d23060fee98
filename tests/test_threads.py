"""Thread-count choice (issue 16): the default respects affinity, cgroup quotas and OMP_NUM_THREADS, warns in one
line when other work already keeps the cores busy, and `--threads auto` takes only the free cores."""
from __future__ import annotations

import pytest
import torch

from lipcli import device
from lipcli.errors import LipError


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine with no quota, no OMP_NUM_THREADS and nothing else running; tests change one thing."""
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(device, "_cgroup_quota", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(device, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    return chosen


def test_every_limit_lowers_the_usable_cores(machine, monkeypatch):
    assert device.usable_cores() == 4
    monkeypatch.setattr(device, "_cgroup_quota", lambda: 2.5)  # docker --cpus 2.5
    assert device.usable_cores() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device.usable_cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {3})  # taskset -c 3
    assert device.usable_cores() == 1


def test_default_takes_the_usable_cores_and_says_nothing_on_a_quiet_machine(machine):
    lines: list[str] = []
    assert device.set_threads(None, lines.append) == 4 and machine == [4] and lines == []


def test_default_warns_once_when_the_machine_is_busy(machine, monkeypatch):
    monkeypatch.setattr(device, "busy_cores", lambda: 3.0)
    lines: list[str] = []
    assert device.set_threads(None, lines.append) == 4
    assert len(lines) == 1 and "busy" in lines[0] and "--threads" in lines[0] and "\n" not in lines[0]


def test_explicit_threads_are_obeyed_silently(machine, monkeypatch):
    monkeypatch.setattr(device, "busy_cores", lambda: 3.0)
    lines: list[str] = []
    assert device.set_threads(3, lines.append) == 3 and device.set_threads("2", lines.append) == 2
    assert lines == [] and machine == [3, 2]


@pytest.mark.parametrize("busy, expected", [(0.0, 4), (1.2, 3), (2.6, 1), (9.0, 1)])
def test_auto_takes_the_free_cores(machine, monkeypatch, busy, expected):
    monkeypatch.setattr(device, "busy_cores", lambda: busy)
    assert device.set_threads("auto") == expected


def test_auto_says_when_it_starts_beside_other_lip_fits(machine, monkeypatch):
    """As the default does (docs/batch.md): auto said nothing."""
    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    monkeypatch.setattr(device.sharing, "beside", lambda: [object()])
    lines: list[str] = []
    assert device.set_threads("auto", lines.append) == 3
    assert len(lines) == 1 and "1 other lip fit running here" in lines[0] and "3 cores free now" in lines[0]


@pytest.mark.parametrize("bad", [0, "0", "many", "-1"])
def test_bad_thread_counts_are_refused(machine, bad):
    with pytest.raises(LipError, match="--threads"):
        device.set_threads(bad)


def test_busy_cores_reads_this_machine():
    assert device.busy_cores() >= 0.0 and device.usable_cores() >= 1


@pytest.mark.parametrize("threads, jobs, tasks, expected", [
    (None, None, 8, (4, 1)),   # auto jobs: one thread each, as many as the cores
    (None, None, 2, (2, 2)),   # no more jobs than tasks; the cores shared
    (None, 3, 8, (3, 1)),
    ("auto", None, 8, (3, 1)),  # the 3 free cores (one is busy)
    (2, None, 8, (2, 2)),      # an explicit count is each job's
    (8, None, 8, (1, 8)),
])
def test_split_cores_between_jobs(machine, monkeypatch, threads, jobs, tasks, expected):
    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    assert device.split_cores(threads, jobs, tasks) == expected
