"""Does the default ticket need its learnable constants? (issue 12, 2026-12-06, forty-second session)

The compacted channel ticket keeps, for every conv, the weights that read the pruned filters' constant outputs
(act(BN beta)) as trainable `fold_weight`s: ~400k of its 551k parameters, touched by Adam every step, and a few
small ops per conv to fold them into the bias. At theta0 every beta is 0, so these inputs are 0; they only grow
because beta and the fold weights are trained. Arm `c0` fixes them (compact(..., trainable_constants=False)): the
ticket is then exactly a narrow net of the ticket's per-layer widths. Same crops and protocol as
weight_decay/pilot.py (tune half of sparse_study.py, sigma 25, seed 0, one thread, the real CLI).

    python experiments/fold/pilot.py run base,c0 tune 25 [SEED [rev]]   # rows to experiments/fold/pilot-rows.jsonl
    python experiments/fold/pilot.py lip restore ...                     # one patched restore (FOLD_TRAIN=0|drop)

Arms `base`, `c0` and `c0x` ran at lip 40fa14d (a worktree on PYTHONPATH; main's compact() was that one until the
forty-third session), where compact() had `trainable_constants`; arm `head` ran the compact() of branch `fold-head`
(039af90), which keeps only the constants the head reads (lip's since the forty-third session: RESULTS-rollback.md).
Arm `c0x` also drops the frozen folds from the forward (they add exactly 0 at theta0): the same fit bit for bit, for
timing only. The halves: tune, report or all.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = {"base": "", "c0": "0", "c0x": "drop", "head": ""}  # base, c0, c0x at 40fa14d; head after it


def patch() -> None:
    """compact()'s trainable_constants from the environment (FOLD_TRAIN=0: fixed)."""
    import lipcli.restore as R
    made = R.compact_net
    mode = os.environ.get("FOLD_TRAIN")
    if mode in ("0", "drop"):
        def frozen(net, masks=None, **kw):
            small = made(net, masks, trainable_constants=False)
            if mode == "drop":  # the frozen constants are act(0) = 0 at theta0: their folds add exactly 0
                for m in small.modules():
                    if getattr(m, "fold_weight", None) is not None:
                        assert not any(float(c.abs().max()) for n, c in small.named_buffers() if "const" in n)
                        m.fold_weight = None
            return small
        R.compact_net = frozen


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from pilot_runs import main
    main(__file__, {arm: {"FOLD_TRAIN": v} for arm, v in ARMS.items()}, HERE / "pilot-rows.jsonl", patch)
