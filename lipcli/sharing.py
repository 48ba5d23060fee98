"""Concurrent lip fits on one machine share its cores instead of each taking all of them.

Two fits that each ran an OpenMP team on every core of a 2-core CPU ran 4.6x slower each (issue 16): each
team waits at every barrier for a thread the other process holds. So a process registers in a per-user
folder when it starts its first fit and stays registered until it exits, and a fit whose thread count the
user left open (`--threads` unset or auto) re-reads the folder about once a second and takes its share: the
cores left by processes with a fixed count, divided between the open ones. It takes more when others end.
Processes pinned to disjoint CPUs (taskset, cpusets) do not count against each other. A fixed `--threads N`
is never changed: results are bit-reproducible only at a fixed count.
"""
from __future__ import annotations

import atexit
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

RESCAN_SECONDS = 1.0  # how often an open fit re-reads the folder; a scan costs well under a millisecond


@dataclass(frozen=True)
class Claim:
    """One running fit: who (pid and its start time, against pid reuse), where (its CPUs) and how many
    threads it keeps (None: open, it takes its share)."""
    pid: int
    started: str
    cpus: tuple[int, ...]
    threads: int | None


@dataclass
class _Policy:
    budget: int  # the threads this process chose (device.set_threads): its share never exceeds it
    cores: int  # the cores it shares with its neighbours (device.shared_cores)
    open: bool  # the user left the count open


_policy: _Policy | None = None


def set_policy(budget: int, cores: int, open_count: bool) -> None:
    """Record this process's thread choice; fits started afterwards register with it."""
    global _policy
    _policy = _Policy(budget, cores, open_count)


def folder() -> Path:
    """Where running fits register: $LIP_SHARE_DIR, else one folder per user in the temp directory."""
    env = os.environ.get("LIP_SHARE_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"lip-fits-{os.getuid()}"


def usable_folder() -> Path | None:
    """`folder()`, made if missing (private to the user), or None if it cannot be made or is someone else's:
    what is kept there (claims, output locks) is then not to be trusted."""
    where = folder()
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        return where if where.stat().st_uid == os.getuid() else None
    except OSError:
        return None


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether two CPU sets may compete; an empty one (no affinity on this platform) competes with all."""
    return not a or not b or bool(set(a) & set(b))


def share_of(me: Claim, others: list[Claim], cores: int, budget: int) -> int:
    """Threads for the open fit `me`: the cores that fits with a fixed count leave, split evenly between
    the open fits on overlapping CPUs (the lowest pids take the remainder), at least 1, at most `budget`."""
    near = [c for c in others if _overlap(c.cpus, me.cpus)]
    free = max(0, cores - sum(c.threads for c in near if c.threads is not None))
    open_pids = sorted([c.pid for c in near if c.threads is None] + [me.pid])
    n, rank = len(open_pids), open_pids.index(me.pid)
    return max(1, min(budget, free // n + (rank < free % n)))


def _started(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22); None when it is gone.
    "" where there is no /proc: then only the pid is checked."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return ""
        return None
    except (OSError, IndexError):
        return None


def running(skip: int | None = None) -> list[Claim]:
    """The fits registered and still alive (other than pid `skip`); files of dead ones are removed."""
    claims = []
    try:
        entries = list(folder().glob("*.json"))
    except OSError:
        return []
    for path in entries:
        try:
            fields = json.loads(path.read_text())
            claim = Claim(**{**fields, "cpus": tuple(fields["cpus"])})
        except (OSError, ValueError, TypeError, KeyError):
            continue  # being written, or not ours
        if claim.pid == skip:
            continue
        if _started(claim.pid) != claim.started:
            path.unlink(missing_ok=True)
            continue
        claims.append(claim)
    return claims


def _own_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()


def beside() -> list[Claim]:
    """The other running fits on CPUs this process may use (where there is no affinity: all of them)."""
    mine = _own_cpus()
    return [c for c in running(skip=os.getpid()) if _overlap(c.cpus, mine)]


_registered: tuple[Path, Claim] | None = None  # this process's file and claim, from its first fit to its exit


def register(policy: _Policy) -> tuple[Path, Claim] | None:
    """Register this process (once; again if the folder or its claim changed) until it exits. A process
    stays registered between its fits: the loading and writing around them use the cores too, and a neighbour
    that grabbed them for those seconds would oversubscribe the machine. None when there is no usable folder
    (then it runs unshared, as before)."""
    global _registered
    pid = os.getpid()
    me = Claim(pid, _started(pid) or "", _own_cpus(), None if policy.open else policy.budget)
    where = folder()
    if _registered is not None and _registered == (where / f"{pid}.json", me):
        return _registered
    unregister()
    if usable_folder() is None:
        return None
    try:
        tmp = where / f".{pid}.tmp"
        tmp.write_text(json.dumps(asdict(me)))
        tmp.replace(where / f"{pid}.json")  # others never read half a file
    except OSError:
        return None
    _registered = (where / f"{pid}.json", me)
    return _registered


def unregister() -> None:
    """Remove this process's file (at exit; a killed process's file is removed by the next one to look)."""
    global _registered
    if _registered is not None:
        _registered[0].unlink(missing_ok=True)
        _registered = None


atexit.register(unregister)


class Share:
    """This process's share of the cores for one fit: `poll(it)` every iteration re-reads the folder at most
    once a second (at once on the first call) and, for an open count, sets torch's threads to the share.
    `changes` lists (iteration, threads) wherever the count changed. Inert without a policy (set_threads was
    never called, e.g. a library user) or on another device."""

    def __init__(self, active: bool) -> None:
        self.policy = _policy if active else None
        self.changes: list[tuple[int, int]] = []
        self.claim = register(self.policy) if self.policy is not None else None
        self.next = 0.0

    def poll(self, it: int) -> None:
        if self.claim is None or not self.policy.open or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + RESCAN_SECONDS
        me = self.claim[1]
        n = share_of(me, running(skip=me.pid), self.policy.cores, self.policy.budget)
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
            self.changes.append((it, n))
