"""Does a lower rollback threshold save the fits a mid-climb loss jump throws out of their basin? (issue 17, 12)

Today a fit rolls back when its loss exceeds `jump_factor` (10^0.5: DIP's 5 dB) times the loss of the last
snapshot (every 10 iterations). Loss jumps of 1.3-3x happen in about half of the recorded sigma-25 trajectories
of the default ticket, some in mid-climb (monarch seed 0: -3.5 dB of EMA PSNR at iteration 859, peak at 1745),
and two such jumps decided the exact compaction's quality marks (RESULTS-fold.md). Arms (RESULTS-rollback.md):
`base` lip at 671cdc0 (worktree /tmp/base), `j1.5` the same with jump_factor 1.5, `headj1.5` branch fold-head
(039af90, worktree /tmp/head: only the head folds constants) with jump_factor 1.5, `head` the same at lip's own
3.16 (run after the marks were read: what the 1.5 does for the compaction). Same crops and protocol as
fold/pilot.py (sparse_study.py's 128x128 crops, the real CLI, one thread).

    git worktree add /tmp/base 671cdc0 && git worktree add /tmp/head 039af90       # the arms' code, first
    python experiments/rollback/pilot.py run base,j1.5,headj1.5 all 25 [SEED [rev]]  # rows to rollback/pilot-rows.jsonl
    python experiments/rollback/pilot.py lip restore ...                           # one patched restore (JUMP=N)

Since this study `lip restore --jump-factor N` does what the patch does.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name -> environment: JUMP for the patch, PYTHONPATH for which lip runs (worktrees: nothing imports /work/main)
ARMS = {"base": {"PYTHONPATH": "/tmp/base"}, "j1.5": {"JUMP": "1.5", "PYTHONPATH": "/tmp/base"},
        "headj1.5": {"JUMP": "1.5", "PYTHONPATH": "/tmp/head"}, "head": {"PYTHONPATH": "/tmp/head"}}


def patch() -> None:
    """fit()'s jump_factor from the environment (JUMP=N; unset: lip's own)."""
    import lipcli.restore as R
    factor = os.environ.get("JUMP")
    if factor:
        made = R.fit
        R.fit = lambda model, targets, cfg, **kw: made(model, targets, replace(cfg, jump_factor=float(factor)), **kw)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from pilot_runs import main
    main(__file__, ARMS, HERE / "pilot-rows.jsonl", patch)
