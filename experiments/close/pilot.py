"""The live check of RESULTS-stop-close.md: the real CLI with and without `--es-close`, on fresh seeds.

The recorded trajectories the close was chosen on are the ticket before the exact compaction; this runs today's
compacted ticket (lip at the commit that added the flag, worktree /tmp/close, so nothing imports /work/main while
it changes) on sparse_study.py's 16 crops of 128x128, one thread, both arms on the same seed: the runs are the same
up to the earlier stop, so the paired difference is the close's. Arm `close` passes `--es-close 0.015`.

    git worktree add /tmp/close COMMIT
    python experiments/close/pilot.py run today,close all 50 8 [rev]   # rows to close/pilot-rows.jsonl
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = {"today": {"PYTHONPATH": "/tmp/close"}, "close": {"PYTHONPATH": "/tmp/close", "LIP_EXTRA": "--es-close 0.015"}}


def patch() -> None:
    """The arm's extra flags (LIP_EXTRA) onto the restore's command line."""
    sys.argv += os.environ.get("LIP_EXTRA", "").split()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from pilot_runs import main
    main(__file__, ARMS, HERE / "pilot-rows.jsonl", patch)
