#!/usr/bin/env python
"""What lip's layout fixes buy per iteration (benchmarks/RESULTS-pad.md), for lip's real loop (`fit`, bf16 autocast +
channels_last) on the default prior (the shipped channel ticket, compacted), a uniform 1/4-width net and the dense
net, with bench_iter.py's plain fp32 reference loop in the same run for scale. The fixes (lipcli/nets/base.py):
  - `pad`: reflection padding in the activation's own dtype (CPU autocast would run it in fp32: a cast up and back
    down around every padded conv, and again in backward);
  - `cat_channels`: the skip/deep merge stays channels-last when a ticket keeps one filter of a skip branch (a
    one-channel map made torch.cat fall back to NCHW);
  - `upsample2x`: the upsampling's backward gets a contiguous gradient, not a channel slice of the merge's.
Arms: "before" (none of them: the benchmark swaps plain torch calls back in), "pad" (only the first), "all".
Interleaved per repeat with rotating order; medians of the per-repeat medians and paired ratios.

    python benchmarks/bench_layout.py --size 128 --repeats 7 --steps 30 --threads 2   # its tables: RESULTS-pad.md
eflection padding in the activation's own dtype (lipcli/nets/base.py `pad`) against padding through
CPU autocast, which runs it in fp32 (a bf16 activation cast up before each padded conv, back down for the
conv, and both casts again in backward). Per-iteration time of lip's real loop (`fit`, bf16 autocast +
channels_last) for the default prior (the shipped channel ticket, compacted), a uniform 1/4-width net and
the dense net, with bench_iter.py's plain fp32 reference loop in the same run for scale. Paths are
interleaved per repeat; medians of the per-repeat medians.

    python benchmarks/bench_pad.py --size 128 --repeats 7 --steps 30 --threads 2   # its tables: RESULTS-pad.md
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import build_reference, emit, timing_parser, synthetic_problem, time_lip, time_ref  # noqa: E402

from lipcli import api, nets  # noqa: E402
from lipcli.nets import compact as compact_mod, skip  # noqa: E402
from lipcli.restore import fitted_form  # noqa: E402

REFERENCE = ("dip-w32", "dip (dense)")  # nets the plain reference loop can run


PLAIN = {  # the fixes' plain torch counterparts: lip before them
    "pad": lambda x, widths, mode: F.pad(x, widths, mode=mode),
    "cat_channels": lambda parts: torch.cat(parts, dim=1),
    "upsample2x": lambda x, mode: F.interpolate(x, scale_factor=2, mode=mode,
                                                **({"align_corners": False} if mode == "bilinear" else {})),
}
ARMS = {"before": ("pad", "cat_channels", "upsample2x"), "pad": ("cat_channels", "upsample2x"), "all": ()}


@contextmanager
def without(names: tuple[str, ...]) -> Iterator[None]:
    """lip with the named fixes swapped for their plain torch counterparts, in both net modules."""
    saved = {(m, n): getattr(m, n) for m in (skip, compact_mod) for n in names}
    for m, n in saved:
        setattr(m, n, PLAIN[n])
    try:
        yield
    finally:
        for (m, n), f in saved.items():
            setattr(m, n, f)


def nets_to_time(seed: int) -> dict[str, tuple[dict, torch.nn.Module]]:
    """name -> (spec of the net the reference loop mirrors, the net lip fits), at seed `seed`'s weights."""
    prior = api.restorer(device="cpu").prior  # the default denoising prior
    ticket, _, _ = fitted_form(prior.build(seed), prior, lambda line: None)
    torch.manual_seed(seed)
    return {"default ticket (compacted)": (prior.spec, ticket),
            "dip-w32": (nets.preset("dip-w32"), nets.build(nets.preset("dip-w32"))),
            "dip (dense)": (nets.preset("dip"), nets.build(nets.preset("dip")))}


def main() -> None:
    a = timing_parser(__doc__).parse_args()
    torch.set_num_threads(a.threads)
    _, noisy = synthetic_problem(a.size)
    ms: dict[tuple[str, str], list[float]] = {}
    for rep in range(a.repeats):
        for name, (spec, lip_net) in nets_to_time(rep).items():
            z = nets.make_input(nets.build(spec), a.size, a.size, torch.Generator().manual_seed(rep))
            if name in REFERENCE:  # the plain loop has no compacted net: it runs the uniform ones
                ref, _, _ = build_reference(spec)
                ms.setdefault((name, "ref"), []).append(statistics.median(time_ref(ref, z, noisy, a.steps)) * 1e3)
            arms = list(ARMS)
            for arm in arms[rep % 3:] + arms[:rep % 3]:  # same weights; the order rotates
                with without(ARMS[arm]):
                    t = time_lip("lip-bf16-cl", copy.deepcopy(lip_net), z, noisy, a.steps, rep)[0]
                ms.setdefault((name, arm), []).append(statistics.median(t) * 1e3)
            print(f"repeat {rep + 1}/{a.repeats} {name}: " + ", ".join(
                f"{k[1]} {v[-1]:.1f} ms" for k, v in ms.items() if k[0] == name), file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in ms.items()}
    lines = [
        f"## {a.size}x{a.size}", "",
        f"- command: `python benchmarks/bench_layout.py --size {a.size} --repeats {a.repeats} --steps {a.steps} "
        f"--threads {a.threads}`",
        f"- {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {a.threads} threads, "
        f"load average at the end {os.getloadavg()[0]:.1f}; medians of {a.repeats} interleaved repeats of the median "
        f"of {a.steps} iterations; lip = bf16 autocast + channels_last",
        "", "| net | ref ms/iter | lip before | lip, pad only | lip, all | pad / before (paired) | all / before "
        "(paired) | ref / all |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(k[0] for k in ms):
        ref = med.get((name, "ref"))

        def paired(arm: str) -> str:
            r = sorted(n / o for n, o in zip(ms[name, arm], ms[name, "before"]))
            return f"{statistics.median(r):.3f} ({r[0]:.3f}-{r[-1]:.3f})"
        after = med[name, "all"]
        lines.append(f"| {name} | {'-' if ref is None else f'{ref:.1f}'} | {med[name, 'before']:.1f} | "
                     f"{med[name, 'pad']:.1f} | {after:.1f} | {paired('pad')} | {paired('all')} | "
                     f"{'-' if ref is None else f'{ref / after:.2f}x'} |")
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
