#!/bin/sh
# Sigma 10, below every level the kernel decay was measured at: the default prior with --weight-decay 0 and with 0.1
# (the entry's value where the blind estimate reads 12.5-20; below 12.5 it decays nothing, unmeasured), both halves,
# seed 0, one worker per arm, 128x128 centre crops, one thread per restore (RESULTS-weight-decay.md, "Sigma 10").
# From the repo root; resumable.
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half all --sigmas 10 \
        --seeds 0 --threads 1 --extra "$1" --out experiments/sparse/rows-s10.jsonl
}
arm "--weight-decay 0" &
arm "--weight-decay 0.1" &
wait
