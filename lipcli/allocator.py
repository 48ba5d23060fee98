"""Whether the process keeps the memory a fit frees for its next step (glibc's malloc, Linux).

A training step frees and re-allocates the same activations every iteration. With glibc's defaults the large
blocks are mmap'd and unmapped and the heap top is trimmed, so every step faults its activations in anew and
the kernel zeroes them: ~2,500 page faults a step for the default ticket at 128x128, ~600,000 at 1024x1024.
Raising the trim and mmap thresholds keeps the pages: a 1024x1024 step took 0.57x the time (the ticket) and
0.72x (the dense net), a 512x512 one 0.85x; at 128x128 a whole restore was no faster (benchmarks/
RESULTS-malloc.md). Freed blocks are then reused where they fit, so the peak grows with fragmentation: +1% at
128x128, +37-46% at 512x512 and 1024x1024 for the dense net, 1.30x `nets.estimate_bytes` at most. `lip`
keeps memory from its start (lipcli/launch.py; Python callers of lipcli.api keep their process's malloc as
it is); a restore whose estimate would not fit with that growth, or that checkpoints (unmeasured), goes back
to glibc's defaults (lipcli/restore.py `plan_memory`), and `--jobs` plans for it.

Never over the user's own MALLOC_*_ / GLIBC_TUNABLES settings; LIP_KEEP_MEMORY=0 leaves glibc's defaults.
Imports nothing heavy: `lip` calls it before torch loads.
"""
from __future__ import annotations

import ctypes
import os
import sys

KEPT_PEAK = 1.4  # kept peak / nets.estimate_bytes, above the most measured (1.30: dense net, 512² and 1024²)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_KEEP = 2**30  # bytes: no heap top below this is trimmed, no block below it is mmap'd
_DEFAULT = 128 * 2**10  # glibc's initial trim and mmap thresholds
_USERS_OWN = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
_state = {"kept": False}


def _glibc() -> ctypes.CDLL | None:
    """glibc, when lip may set its malloc: on Linux, no user settings, not turned off."""
    if (sys.platform != "linux" or os.environ.get("LIP_KEEP_MEMORY") == "0"
            or any(k in os.environ for k in _USERS_OWN)):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")  # absent under musl
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory(keep: bool = True) -> bool:
    """Keep freed memory for reuse (`keep`), or put glibc's defaults back and hand the memory back now.
    Returns whether memory is kept afterwards."""
    libc = _glibc()
    if libc is None or keep == _state["kept"]:
        return _state["kept"]
    value = _KEEP if keep else _DEFAULT
    if libc.mallopt(_M_TRIM_THRESHOLD, value) and libc.mallopt(_M_MMAP_THRESHOLD, value):
        _state["kept"] = keep
    if not keep:
        libc.malloc_trim(0)
    return _state["kept"]


def peak_factor() -> float:
    """What a fit's estimated peak is multiplied by in this process, and in the `lip` workers it starts (they
    inherit its environment): KEPT_PEAK while memory is kept, else 1."""
    return KEPT_PEAK if _state["kept"] else 1.0
