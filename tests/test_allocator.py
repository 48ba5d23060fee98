"""Freed memory kept for the next step (lipcli/allocator.py): it is, it can be handed back, and never where it
should not be."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from lipcli import allocator, jobs, nets, restore
from lipcli.fit import FitConfig

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# A small conv net's training steps (1 MB activations, freed and allocated again every step): page faults per
# step once it runs (the quietest of three blocks), with memory kept from the start (as `lip` does), and after
# handing it back (KEEP=0).
PROBE = """
import json, os, resource
from lipcli import allocator
kept = allocator.keep_freed_memory()
import torch
x, w = torch.randn(1, 16, 128, 128, requires_grad=True), torch.randn(16, 16, 3, 3, requires_grad=True)
def step():
    y = x
    for _ in range(6):
        y = torch.nn.functional.conv2d(y, w, padding=1).relu()
    y.square().mean().backward()
def block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
def faults():
    for _ in range(3):
        step()
    return min(block() for _ in range(3))  # the quietest block: a busy host's reclaim faults show in one, not all
out = {"kept": kept, "faults": faults()}
if os.environ.get("HAND_BACK"):
    out["kept_after"] = allocator.keep_freed_memory(False)
    out["faults_after"] = faults()
print(json.dumps(out))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "LIP_KEEP_MEMORY" and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_steps_reuse_the_memory_the_last_step_freed_until_it_is_handed_back():
    kept, defaults = probe(HAND_BACK="1"), probe(LIP_KEEP_MEMORY="0")
    assert kept["kept"] and not defaults["kept"]
    # glibc hands the activations back and the kernel maps and zeroes them again: 700-3200 faults a step by
    # default (glibc's dynamic mmap threshold moves between runs), ~50 while lip keeps the memory
    assert kept["faults"] < defaults["faults"] / 8
    assert not kept["kept_after"] and kept["faults_after"] > 8 * kept["faults"]


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_the_users_own_allocator_settings_win():
    assert not probe(MALLOC_TRIM_THRESHOLD_="131072")["kept"]
    assert not probe(GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")["kept"]


def test_elsewhere_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
    assert allocator.peak_factor() == 1.0  # this test process never kept memory


@pytest.mark.parametrize("free_gib, checkpoint, calls", [(100, None, []), (7, None, [False]), (100, True, [False])])
def test_a_restore_hands_memory_back_where_the_larger_peak_would_not_fit(monkeypatch, free_gib, checkpoint, calls):
    """Only `lip` itself turns keeping on (at its start); a library caller's process is left as it is."""
    spec, size = nets.preset("dip"), (1024, 1024)
    need = nets.estimate_bytes(spec, *size, "bf16")
    assert need < 0.9 * 7 * 2**30 < allocator.KEPT_PEAK * need  # 7 GiB: the plain step fits, the kept one not
    made: list[bool] = []
    monkeypatch.setattr(restore.devices, "available_memory", lambda dev: int(free_gib * 2**30))
    monkeypatch.setattr(allocator, "keep_freed_memory", made.append)
    cfg = restore.plan_memory(spec, size, FitConfig(precision="bf16", checkpoint=checkpoint), torch.device("cpu"))
    assert cfg.checkpoint is bool(checkpoint) and made == calls


def test_jobs_plan_room_for_kept_memory(monkeypatch):
    """Two jobs whose plain peaks fit together but whose kept peaks do not run one at a time."""
    need = 3 * 2**30
    monkeypatch.setattr(jobs.devices, "available_memory", lambda dev: int(2 * need * 1.2 / jobs.devices.MEMORY_SHARE))
    monkeypatch.setattr(jobs.devices, "split_cores", lambda threads, n, count: (n or 2, 1))
    monkeypatch.setattr(allocator, "peak_factor", lambda: 1.0)
    assert jobs.plan(None, None, 2, torch.device("cpu"), lambda: need, print) == (2, 1)
    monkeypatch.setattr(allocator, "peak_factor", lambda: allocator.KEPT_PEAK)
    assert jobs.plan(None, None, 2, torch.device("cpu"), lambda: need, print) is None
