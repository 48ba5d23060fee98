"""Device and hardware resolution: which device, whether bf16 pays, how much memory there is."""
from __future__ import annotations

from functools import lru_cache

import torch

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
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return False


def available_memory(dev: torch.device) -> int | None:
    """Bytes free for activations on `dev`, or None when unknown."""
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def set_threads(threads: int | None) -> int:
    """Pin the intra-op thread count (results are bit-reproducible only at a fixed count)."""
    if threads is not None:
        if threads < 1:
            raise LipError(f"--threads {threads} must be at least 1")
        torch.set_num_threads(threads)
    return torch.get_num_threads()
