"""Does the channels-last concat and jitter change what a restore returns? (issue 12, forty-sixth session)

`concat` (lipcli/nets/base.py) keeps a level's merged map channels-last where torch.cat made it NCHW (a one-channel
skip map beside a channels-last one), and `jittered` (lipcli/fit.py) draws the input jitter in z's layout. The
first changes only the order of round-off (BN statistics and upsampling gradients summed in another order); the
second draws another realisation of the same i.i.d. jitter. Neither changes the prior, so the fits should land
as well on average; this checks it on paired runs (RESULTS-profile.md has the plan and marks). Arms are lip
before (`base`, worktree /tmp/base) and after the change (`layout`, worktree /tmp/new): nothing is patched.
Same crops and protocol as rollback/pilot.py (sparse_study.py's 128x128 crops, the real CLI, one thread).

    git worktree add /tmp/base 3cd999a && git worktree add /tmp/new 4218f90   # the arms' code, first
    python experiments/layout/pilot.py run base,layout all 25 SEED [rev]    # rows to layout/pilot-rows.jsonl
    python experiments/layout/pilot.py report base layout 8,9,10 [SIGMA]
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = {"base": {"PYTHONPATH": "/tmp/base"}, "layout": {"PYTHONPATH": "/tmp/new"}}

if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from pilot_runs import main
    main(__file__, ARMS, HERE / "pilot-rows.jsonl", lambda: None)
