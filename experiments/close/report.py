"""The live check's numbers (RESULTS-stop-close.md): arm `close` against `today`, paired by crop and seed.

    python experiments/close/report.py today close 8 50
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pilot_runs import compare  # noqa: E402

if __name__ == "__main__":
    compare([HERE / "pilot-rows.jsonl"], sys.argv[1], sys.argv[2], {int(s) for s in sys.argv[3].split(",")},
            sys.argv[4])
