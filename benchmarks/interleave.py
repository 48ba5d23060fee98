"""Time two shell commands as whole processes, in turn (A B A B ...), and print medians and the A/B ratios.

Interleaving keeps the ratio fair when the machine's speed drifts during the call: each pair runs under
about the same conditions. Wall time is a monotonic clock around the child; CPU time is the user + system
time of the finished children (getrusage), so a command's worker processes count once they are reaped.

    python benchmarks/interleave.py -n 3 "lip restore sample:house-noisy -o a.png" "lip restore --dense sample:house-noisy -o b.png"
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import time


def run(command: str) -> tuple[float, float, int]:
    """(wall s, CPU s, exit code) of one run of `command` through the shell, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    code = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="command A (the one judged)")
    ap.add_argument("b", help="command B (the yardstick)")
    ap.add_argument("-n", type=int, default=3, help="pairs")
    a = ap.parse_args()
    rows = []
    for i in range(a.n):
        pair = run(a.a), run(a.b)
        rows.append(pair)
        print(f"pair {i + 1}: A {pair[0][0]:.1f} s wall {pair[0][1]:.1f} s CPU (exit {pair[0][2]}), "
              f"B {pair[1][0]:.1f} s wall {pair[1][1]:.1f} s CPU (exit {pair[1][2]})", flush=True)
    med = statistics.median
    for k, what in ((0, "wall"), (1, "CPU")):
        ratios = [x[k] / y[k] for x, y in rows]
        print(f"{what}: A median {med(x[k] for x, _ in rows):.1f} s, B median {med(y[k] for _, y in rows):.1f} s, "
              f"A/B median {med(ratios):.3f} (pairs {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
