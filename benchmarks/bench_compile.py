"""Does `torch.compile` pay for the default prior? (issue 12, item 3)

Times the training step of the default ticket (dip-channel-house, compacted: 551k params) at 128x128 in the
fast preset's form (bf16 autocast, channels_last, fused Adam, input jitter), eager or compiled, in this
process: the first two steps (compilation included) and three blocks of steady steps. Run each mode in its
own process; a second compiled run finds inductor's on-disk cache warm.

    python benchmarks/bench_compile.py eager --threads 1
    python benchmarks/bench_compile.py compile --threads 1     # twice: cold, then warm cache
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lipcli import library, nets
from lipcli.fit import crop_center
from lipcli.restore import fitted_form, masked_prior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("eager", "compile"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30, help="steps per timed block")
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior = masked_prior(library.resolve(Path("dip-channel-house")), None, None, "artifact")
    net = prior.build(0)
    model, _, _ = fitted_form(net, prior, lambda line: None)
    model = model.to(memory_format=torch.channels_last).train()
    z = nets.make_input(net, a.size, a.size, torch.Generator().manual_seed(0)).to(memory_format=torch.channels_last)
    y = torch.rand(1, 3, a.size, a.size, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01, fused=True)
    gen = torch.Generator().manual_seed(0)
    run = model if a.mode == "eager" else torch.compile(model)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = run(z + torch.randn(z.shape, generator=gen) / 30)
        loss = torch.nn.functional.mse_loss(crop_center(out.float(), (a.size, a.size)), y)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step(), step()
    print(f"{a.mode}: first 2 steps {time.perf_counter() - t0:.1f} s")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        print(f"{a.mode}: {(time.perf_counter() - t0) / a.steps * 1000:.1f} ms/step")


if __name__ == "__main__":
    main()
