"""Device and hardware resolution: which device, whether bf16 pays, how much memory there is."""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from . import sharing
from .errors import LipError


def resolve(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device that is absent is a usage error."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LipError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LipError(f"device {name} asked for, but this machine has no CUDA GPU (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LipError(f"device {name} does not exist: this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise LipError(f"device {name} asked for, but MPS is not available here (use --device cpu)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise LipError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return dev


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def fast_bf16(dev: torch.device) -> bool:
    """bf16 autocast is only a speed-up with hardware bf16: AMX/AVX512-BF16 CPUs or CUDA GPUs that have it."""
    if dev.type == "cuda":  # is_bf16_supported() also says yes where bf16 is only emulated (before Ampere)
        return torch.cuda.get_device_capability(dev) >= (8, 0)
    if dev.type == "cpu":
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return False


def out_of_memory(exc: torch.OutOfMemoryError) -> LipError:
    """A GPU that ran out of memory mid-run, as a refusal that says what to try (the plan before the fit
    estimates; other processes on the GPU can still take what it counted as free)."""
    return LipError(f"the GPU ran out of memory ({str(exc).splitlines()[0][:120]}); try --checkpoint, "
                    "--precision bf16, a smaller or cropped image, a narrower net, or a less busy GPU")


MEMORY_SHARE = 0.9  # of `available_memory` that lip plans to fill (a restore, or several jobs together)


def available_memory(dev: torch.device) -> int | None:
    """Bytes free for activations on `dev`, or None when unknown. On CUDA that includes what torch's caching
    allocator holds unused (an earlier fit's freed blocks): the driver counts it as taken, but the next fit
    reuses it."""
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0] + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def usable_cores() -> int:
    """CPUs this process may really use: the affinity mask, a cgroup CPU quota, OMP_NUM_THREADS and
    SLURM_CPUS_PER_TASK.

    torch's own default counts the machine's cores, so under `taskset`, a container quota or a SLURM
    allocation it oversubscribes; each limit here is one that schedulers actually set. A SLURM job's
    `--cpus-per-task` is not always enforced by affinity (that depends on the cluster's task plugin), so
    it is read too: N array tasks on one node then share its cores instead of each taking all of them.
    """
    limits = [shared_cores()]
    for var in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            limits.append(int(value))
    return max(1, min(limits))


def shared_cores() -> int:
    """The cores this process shares with its neighbours: the affinity mask and the cgroup quota, limits
    that hold for every process under them, unlike the per-process OMP_NUM_THREADS and SLURM_CPUS_PER_TASK.
    lipcli/sharing.py divides these between concurrent lip fits (four SLURM tasks of 8 CPUs each on a node
    that does not bind them share its 32 cores, not 8)."""
    limits = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1]
    quota = _cgroup_quota()
    if quota is not None:
        limits.append(max(1, math.floor(quota)))
    return max(1, min(limits))


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max, else v1 cfs quota/period); None when unlimited or unknown."""
    for path, split in (("/sys/fs/cgroup/cpu.max", lambda t: t.split()),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", None)):
        try:
            text = Path(path).read_text().strip()
            if split is not None:
                quota, period = split(text)
            else:
                quota, period = text, Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
            if quota not in ("max", "-1"):
                return int(quota) / int(period)
        except (OSError, ValueError):
            continue
    return None


def busy_cores() -> float:
    """How many cores other work keeps busy right now: the larger of the 1-minute load average and the
    runnable threads the kernel counts at this instant (minus this process), so a job started a second ago
    already counts. Both include work outside our affinity mask; this is a hint, not a measurement."""
    running = 0
    try:
        with open("/proc/stat") as f:
            running = next((int(line.split()[1]) for line in f if line.startswith("procs_running")), 1) - 1
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(float(running), load)


def set_threads(threads: int | str | None, notify: Callable[[str], None] = lambda line: None) -> int:
    """Choose (`thread_budget`) and set the intra-op thread count. Only an explicit count stays fixed
    through the fits (results are bit-reproducible only at a fixed count); None and auto share the cores
    with other lip fits as they come and go (lipcli/sharing.py)."""
    n = thread_budget(threads, notify)
    torch.set_num_threads(n)
    sharing.set_policy(n, shared_cores(), open_count=threads is None or threads == "auto")
    return n


def thread_budget(threads: int | str | None, notify: Callable[[str], None] = lambda line: None) -> int:
    """The threads a run may use (all its jobs together).

    None: every usable core (`usable_cores`). Other lip fits get their share while they run
    (lipcli/sharing.py); other work only gets one line to `notify` when it already keeps the cores busy —
    two jobs that each take every core of this 2-core CPU ran 4.6x slower each.
    "auto": the cores other work leaves free (at least 1), shared like None. An integer: exactly that,
    with one line when lip fits with fixed counts already hold the cores.
    """
    if threads == "auto":
        n, others = free_cores(), len(sharing.beside())
        if others:  # docs/batch.md: the first line says when a fit starts beside others
            notify(f"lip: {others} other lip fit{'s' if others > 1 else ''} running here: --threads auto takes the "
                   f"{n} core{'s' if n > 1 else ''} free now, shared while {'they run' if others > 1 else 'it runs'}")
        return n
    if threads is not None:
        n, shared = thread_count(threads), shared_cores()
        held = sum(c.threads for c in sharing.beside() if c.threads is not None)
        if n > usable_cores():
            notify(f"lip: --threads {n} is more than the {usable_cores()} usable cores: the threads will take "
                   "turns on them, and every step waits for the last of them: often several times slower than one "
                   "thread per core (leave --threads out to use every core)")
        elif held and held + n > shared:
            notify(f"lip: other lip fits hold {held} of {shared} cores with a fixed --threads; {n} more "
                   "will oversubscribe them (leave --threads out to share the cores)")
        return n
    cores = usable_cores()
    threads = min(cores, torch.get_num_threads())
    others = len(sharing.beside())
    busy = busy_cores()
    if others:
        notify(f"lip: {others} other lip fit{'s' if others > 1 else ''} running here: sharing the cores with "
               f"{'them' if others > 1 else 'it'} while {'they run' if others > 1 else 'it runs'} "
               "(--threads N fixes the count)")
    elif busy >= 0.75 and threads > 1 and busy + threads > cores + 0.5:
        notify(f"lip: this machine is busy (about {busy:.1f} of {cores} cores in use by other work); "
               f"running on {threads} threads anyway. For several jobs at once give each --threads "
               f"{max(1, cores // 2)}, or use --threads auto to take only the free cores")
    return threads


def split_cores(threads: int | str | None, jobs: int | None, tasks: int,
                notify: Callable[[str], None] = lambda line: None) -> tuple[int, int]:
    """(jobs, threads per job) for `tasks` independent runs done `jobs` at a time.

    An explicit thread count is each job's; by default (and with auto) `thread_budget` is shared between
    the jobs. `jobs` None = as many as that budget allows at one thread each, at most one per task: on a
    CPU, two 1-thread restores did 1.2-1.4x (dense net) and 1.7-2x (1/16-parameter net) the work per second
    of one 2-thread restore (benchmarks/RESULTS-jobs.md): one fit's convolutions do not scale over cores.
    """
    if threads is None or threads == "auto":
        budget = thread_budget(threads, notify)
        n = jobs or max(1, min(tasks, budget))
        return n, max(1, budget // n)
    each = thread_count(threads)
    return jobs or max(1, min(tasks, usable_cores() // each)), each


def free_cores() -> int:
    """The usable cores other work leaves free right now (at least 1): what `--threads auto` takes."""
    cores = usable_cores()
    return max(1, min(cores, round(cores - busy_cores())))


def thread_count(threads: int | str) -> int:
    """A thread count given by the user, checked."""
    if isinstance(threads, str) and not threads.lstrip("-").isdigit():
        raise LipError(f"--threads {threads}: give a number of threads or auto")
    if int(threads) < 1:
        raise LipError(f"--threads {threads} must be at least 1")
    return int(threads)
