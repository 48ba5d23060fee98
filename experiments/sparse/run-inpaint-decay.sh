#!/bin/sh
# Issue 17 (inpainting's peak lies past its cap): the fast preset's inpainting (dense net, Bernoulli 50%, cap 1875,
# EMA output, observed pixels put back) with the kernel decay (--weight-decay 0.2) and without it, through the real
# CLI at 128x128 (the decay was tried on 64x64 crops first: experiments/RESULTS-decay-tasks.md). Report crops,
# seed 0, one thread per restore, the pair of each crop back to back. From the repo root; resumable.
# In the rows of 2026-12-05 the decayed arm is the fast preset's own decay (no flag in its key; the row says
# weight_decay 0.2), which is what the first flag set gives. f16 was started and stopped for time.
for im in baby bird coastguard; do
    for extra in "--task inpaint --keep 0.5 --weight-decay 0.2" "--task inpaint --keep 0.5 --weight-decay 0"; do
        nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half report \
            --images "$im" --extra "$extra" --out experiments/sparse/rows-inpaint-decay.jsonl
    done
done
