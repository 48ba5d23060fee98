"""Time shell commands as whole processes, in turn (A B ... Y A B ... Y): medians and ratios to the last.

Interleaving keeps a ratio fair when the machine's speed drifts during the call: each round runs under
about the same conditions; the last command is the yardstick every other is divided by, round by round.
Wall time is a monotonic clock around the child; CPU time is the user + system time of the finished
children (getrusage), so a command's worker processes count once they are reaped.

    python benchmarks/interleave.py -n 3 "lip restore sample:house-noisy -o a.png" \
        "lip restore --dense sample:house-noisy -o b.png"
    # each round, then per command the median wall and CPU seconds and the median ratio to the last
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
    ap.add_argument("commands", nargs="+", help="the commands; the last is the yardstick (at least two)")
    ap.add_argument("-n", type=int, default=3, help="rounds")
    a = ap.parse_args()
    if len(a.commands) < 2:
        ap.error("give at least two commands")
    names = [chr(ord("A") + i) for i in range(len(a.commands))]
    rounds = []
    for i in range(a.n):
        rounds.append([run(c) for c in a.commands])
        print(f"round {i + 1}: " + ", ".join(f"{k} {w:.1f} s wall {c:.1f} s CPU (exit {e})"
                                              for k, (w, c, e) in zip(names, rounds[-1])), flush=True)
    med = statistics.median
    for j, (name, command) in enumerate(zip(names, a.commands)):
        print(f"{name} = {command}")
        for k, what in ((0, "wall"), (1, "CPU")):
            line = f"  {what}: median {med(r[j][k] for r in rounds):.1f} s"
            if j < len(a.commands) - 1:
                ratios = [r[j][k] / r[-1][k] for r in rounds]
                line += f", {name}/{names[-1]} median {med(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
            print(line)


if __name__ == "__main__":
    main()
