"""The numbers of RESULTS-rollback.md: arms paired by crop and seed, from experiments/rollback/pilot-rows.jsonl and
experiments/fold/pilot-rows.jsonl (whose `base` and `head`, seeds 0-4 at sigma 25, are the same code as this one's).

    python experiments/rollback/report.py base j1.5 5,6,7 [SIGMA]   # the second arm against the first, those seeds
    python experiments/rollback/report.py base head 0,1,2,3,4,5,6,7   # the compaction pooled over both files
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pilot_runs import compare  # noqa: E402

ROWS = [HERE / "pilot-rows.jsonl", HERE.parent / "fold" / "pilot-rows.jsonl"]

if __name__ == "__main__":
    compare(ROWS, sys.argv[1], sys.argv[2], {int(s) for s in sys.argv[3].split(",")},
            sys.argv[4] if len(sys.argv) > 4 else "25")
