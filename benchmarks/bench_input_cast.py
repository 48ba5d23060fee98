"""Does casting the net's input to bf16 once (fit.observation_loss) make a training step cheaper? (issue 12, item 3)

Under bf16 autocast each conv that reads the input z casts it again, and the padded conv casts the padded copy;
casting once before the net gives the same values (tests/test_fit.py). This times a training step of the default
prior (dip-channel-house round 2, compacted) or a net preset both ways, from the same weights, the two arms
interleaved per repeat with alternating order; wall ms per step and the paired ratio (median and range).

    python benchmarks/bench_input_cast.py --threads 1 --repeats 20
    python benchmarks/bench_input_cast.py --threads 2 --repeats 20 --net dip
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from lipcli import library, nets
from lipcli.fit import crop_center
from lipcli.restore import fitted_form, masked_prior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="ticket", help="ticket (the default prior) or a net preset")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed block")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.net == "ticket":
        prior = masked_prior(library.resolve(Path("dip-channel-house")), None, None, "artifact")
        net = prior.build(0)
        model = fitted_form(net, prior, lambda line: None)[0]
    else:
        torch.manual_seed(0)
        net = model = nets.build(nets.preset(a.net))
    model = model.to(memory_format=torch.channels_last).train()
    z = nets.make_input(net, a.size, a.size, torch.Generator().manual_seed(0)).to(memory_format=torch.channels_last)
    y = torch.rand(1, 3, a.size, a.size, generator=torch.Generator().manual_seed(1))
    arms = {}
    for arm in ("autocast casts", "cast once"):
        m = copy.deepcopy(model)
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.01, fused=True)
        arms[arm] = (m, opt, torch.Generator().manual_seed(0))

    def step(arm: str) -> None:
        m, opt, gen = arms[arm]
        opt.zero_grad(set_to_none=True)
        x = z + torch.randn(z.shape, generator=gen) / 30
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x.to(torch.bfloat16) if arm == "cast once" else x)
        torch.nn.functional.mse_loss(crop_center(out.float(), (a.size, a.size)), y).backward()
        opt.step()

    for arm in arms:
        for _ in range(3):
            step(arm)
    ms: dict[str, list[float]] = {arm: [] for arm in arms}
    for r in range(a.repeats):
        for arm in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step(arm)
            ms[arm].append((time.perf_counter() - t0) / a.steps * 1000)
    ratios = [b / o for b, o in zip(ms["cast once"], ms["autocast casts"])]
    print(f"{a.net} {a.size}x{a.size}, {a.threads} thread(s), {a.repeats} interleaved repeats of {a.steps} steps, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for arm in arms:
        print(f"  {arm}: {statistics.median(ms[arm]):.1f} ms/step (median)")
    print(f"  cast once / autocast casts, paired: {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
