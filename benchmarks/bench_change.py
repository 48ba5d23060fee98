#!/usr/bin/env python
"""A change to lip's loop against lip before it: per-iteration time of lip's real loop (`fit`, bf16 autocast +
channels_last) for the default prior (the shipped channel ticket, compacted), a uniform 1/4-width net and the
dense net, with bench_iter.py's plain fp32 reference loop in the same run for scale. The two arms are
interleaved per repeat, from the same weights, in alternating order; medians of the per-repeat medians.

Changes (`--change`; its first arm puts the old behaviour back for the timed block):
- pad: reflection padding in the activation's own dtype (lipcli/nets/base.py `pad`), where CPU autocast ran
  it in fp32 (a bf16 activation cast up before each padded conv, back down for the conv, both again in
  backward). Its tables: RESULTS-pad.md (made when this file was bench_pad.py).
- input-cast: the input code cast to bf16 once (lipcli/fit.py `net_input`), where autocast cast it for each
  conv that reads it.
- concat: a one-channel skip map joins a level's concat as a channels-last view (lipcli/nets/base.py `concat`),
  where torch.cat made the merged map NCHW.
- jitter: the input jitter drawn in z's channels-last layout (lipcli/fit.py `jittered`), where it was drawn NCHW
  and added to z with a strided pass.
- layout: concat and jitter together.

    python benchmarks/bench_change.py --change pad --size 128 --repeats 7 --steps 30 --threads 2
    python benchmarks/bench_change.py --change input-cast --size 128 --repeats 7 --steps 30 --threads 1
    python benchmarks/bench_change.py --change layout --size 128 --repeats 9 --steps 30 --threads 2
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import statistics
import sys
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import (build_reference, default_ticket, emit, timing_parser, synthetic_problem, time_lip,  # noqa: E402
                        time_ref)

from lipcli import nets  # noqa: E402
from lipcli import fit as fit_mod  # noqa: E402
from lipcli.nets import compact as compact_mod, skip  # noqa: E402

REFERENCE = ("dip-w32", "dip (dense)")  # nets the plain reference loop can run


@contextmanager
def patched(modules: tuple[Any, ...], name: str, old: Callable[..., Any]) -> Iterator[None]:
    """`name` in each of `modules` replaced by `old` (lip before the change) while the block runs."""
    saved = [getattr(m, name) for m in modules]
    for m in modules:
        setattr(m, name, old)
    try:
        yield
    finally:
        for m, value in zip(modules, saved):
            setattr(m, name, value)


def nchw_jitter(z: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """The input jitter before `fit.jittered`: drawn NCHW whatever z's layout."""
    return z + torch.randn(z.shape, generator=gen, device=z.device) * std


def old_concat() -> Any:
    return patched((skip, compact_mod), "concat", lambda parts: torch.cat(parts, dim=1))


def old_jitter() -> Any:
    return patched((fit_mod,), "jittered", nchw_jitter)


@contextmanager
def old_layout() -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(old_concat())
        stack.enter_context(old_jitter())
        yield


# change -> (its arms: before, after; a context that puts lip before the change back)
CHANGES: dict[str, tuple[tuple[str, str], Callable[[], Any]]] = {
    # every reflection pad through F.pad under the caller's autocast
    "pad": (("autocast pad", "own-dtype pad"),
            lambda: patched((skip, compact_mod), "pad", lambda x, widths, mode: F.pad(x, widths, mode=mode))),
    # the input code handed to the net in fp32, for autocast to cast conv by conv
    "input-cast": (("autocast casts", "cast once"), lambda: patched((fit_mod,), "net_input", lambda z, precision: z)),
    "concat": (("NCHW concat", "channels-last concat"), old_concat),
    "jitter": (("NCHW jitter", "jitter in z's layout"), old_jitter),
    "layout": (("NCHW concat and jitter", "channels-last concat and jitter"), old_layout),
}


def nets_to_time(seed: int) -> dict[str, tuple[dict, torch.nn.Module]]:
    """name -> (spec of the net the reference loop mirrors, the net lip fits), at seed `seed`'s weights."""
    spec, ticket = default_ticket(seed)
    torch.manual_seed(seed)
    return {"default ticket (compacted)": (spec, ticket),
            "dip-w32": (nets.preset("dip-w32"), nets.build(nets.preset("dip-w32"))),
            "dip (dense)": (nets.preset("dip"), nets.build(nets.preset("dip")))}


def main() -> None:
    ap = timing_parser(__doc__)
    ap.add_argument("--change", choices=CHANGES, required=True)
    a = ap.parse_args()
    (before, after), revert = CHANGES[a.change]
    torch.set_num_threads(a.threads)
    _, noisy = synthetic_problem(a.size)
    ms: dict[tuple[str, str], list[float]] = {}
    for rep in range(a.repeats):
        for name, (spec, lip_net) in nets_to_time(rep).items():
            z = nets.make_input(nets.build(spec), a.size, a.size, torch.Generator().manual_seed(rep))
            if name in REFERENCE:  # the plain loop has no compacted net: it runs the uniform ones
                ref, _, _ = build_reference(spec)
                ms.setdefault((name, "ref"), []).append(statistics.median(time_ref(ref, z, noisy, a.steps)) * 1e3)
            arms = (before, after)
            for arm in arms if rep % 2 == 0 else arms[::-1]:  # same weights; the order alternates
                with revert() if arm == before else nullcontext():
                    t = time_lip("lip-bf16-cl", copy.deepcopy(lip_net), z, noisy, a.steps, rep)[0]
                ms.setdefault((name, arm), []).append(statistics.median(t) * 1e3)
            print(f"repeat {rep + 1}/{a.repeats} {name}: " + ", ".join(
                f"{k[1]} {v[-1]:.1f} ms" for k, v in ms.items() if k[0] == name), file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in ms.items()}
    lines = [
        f"## {a.size}x{a.size}", "",
        f"- command: `python benchmarks/bench_change.py --change {a.change} --size {a.size} --repeats {a.repeats} "
        f"--steps {a.steps} "
        f"--threads {a.threads}`",
        f"- {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {a.threads} threads, "
        f"load average at the end {os.getloadavg()[0]:.1f}; medians of {a.repeats} interleaved repeats of the median "
        f"of {a.steps} iterations; lip = bf16 autocast + channels_last",
        "", f"| net | ref ms/iter | lip, {before} | lip, {after} | {after} / {before} (paired: median, range) "
        f"| ref / {after} |", "|---|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(k[0] for k in ms):
        old, new = med[name, before], med[name, after]
        pairs = sorted(n / o for n, o in zip(ms[name, after], ms[name, before]))
        ref = med.get((name, "ref"))
        lines.append(f"| {name} | {'-' if ref is None else f'{ref:.1f}'} | {old:.1f} | {new:.1f} | "
                     f"{statistics.median(pairs):.3f} ({pairs[0]:.3f}-{pairs[-1]:.3f}) | "
                     f"{'-' if ref is None else f'{ref / new:.2f}x'} |")
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
