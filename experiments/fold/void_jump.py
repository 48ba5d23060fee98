"""Exploratory (RESULTS-fold.md, last section): what the stop might do about a loss jump inside its patience
window. The rules are patched into lip's detector from the outside; nothing in lip has them.

A jump: a loss above VOID x the trailing mean of the 50 losses before the current minimum, while the stop waits
out its patience. It resets the minimum (the search starts again); with WAIT=1 no new minimum counts until the
trailing mean loss of the last 50 iterations is back at or under that level. With HOLD=1 instead, the jump keeps
the minimum and only holds the stop until the loss has recovered: a later minimum must still be lower. Re-runs
one pilot restore (sparse_study.py's centre crop, sigma 25, one thread) with whichever lip PYTHONPATH puts first:

    VOID=1.2 [WAIT=1 | HOLD=1] PYTHONPATH=/tmp/head python experiments/fold/void_jump.py man 1 [--json]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import lipcli.earlystop as E
from lipcli.launch import main

FACTOR = float(os.environ.get("VOID", "0"))
WAIT = os.environ.get("WAIT") == "1"
HOLD = os.environ.get("HOLD") == "1"
EXPERIMENTS = Path(__file__).resolve().parents[1]
_update = E.WindowedVariance.update


def update(self: E.WindowedVariance, iteration: int, x, loss: float | None = None, residual=None) -> bool:
    recent = self.__dict__.setdefault("recent_losses", [])
    if loss is not None:
        recent[:] = [*recent[-49:], loss]
        waiting = self.best_iter >= 0 and iteration - self.best_iter < self.patience
        if FACTOR and waiting and loss > FACTOR * self.__dict__.get("loss_at_best", float("inf")):
            if HOLD:
                self.held_to = self.loss_at_best
                print(f"stop held at {iteration}", file=sys.stderr)
            else:
                self.best, self.best_iter = float("inf"), -1
                self.recover_to = self.loss_at_best if WAIT else None
                print(f"minimum voided at {iteration}", file=sys.stderr)
    if getattr(self, "held_to", None) is not None and len(recent) == 50 and sum(recent) / 50 <= self.held_to:
        self.held_to = None
        print(f"released at {iteration}", file=sys.stderr)
    if getattr(self, "recover_to", None) is not None:
        _update(self, iteration, x, loss, residual)
        self.best, self.best_iter = float("inf"), -1
        if loss is not None and len(recent) == 50 and sum(recent) / 50 <= self.recover_to:
            self.recover_to = None
            print(f"recovered at {iteration}", file=sys.stderr)
        return False
    new = _update(self, iteration, x, loss, residual)
    if new and len(recent) > 1:
        self.loss_at_best = sum(recent[:-1]) / (len(recent) - 1)
    return new


_should_stop = E.WindowedVariance.should_stop


def should_stop(self: E.WindowedVariance, iteration: int) -> bool:
    return getattr(self, "held_to", None) is None and _should_stop(self, iteration)


if __name__ == "__main__":
    E.WindowedVariance.update = update
    E.WindowedVariance.should_stop = should_stop
    sys.path.insert(0, str(EXPERIMENTS))
    from sparse_study import crop
    name, seed, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    src = crop(name, 128, "c", EXPERIMENTS / "sparse" / "crops")
    sys.argv = ["lip", "restore", "--simulate", str(src), "--sigma", "25", "--seed", seed,
                "--threads", "1", "-o", "/dev/null", *extra]
    main()
