#!/bin/sh
# The kernel decay at sigma 15 again, after the rollback fix (d4068f5): its report-half loss (-0.13 dB) came with
# 34 rollbacks over 16 crops, taken from a snapshot one step past its loss. The default prior with
# --weight-decay 0 against the same with --weight-decay 0.2, both halves, 128x128 centre crops, one thread per
# restore, one worker per arm. $1 = seeds (default 0; the second run: 1). From the repo root; resumable.
# Seed 0's plain arm ran as the bare default (no flag in its rows' key), which does not decay at sigma 15;
# 3420ed6 made it decay there and 861de4a took that back, so the plain arm now says --weight-decay 0.
SEEDS=${1:-0}
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half all --sigmas 15 \
        --seeds "$SEEDS" --threads 1 --extra "$1" --out experiments/sparse/rows-s15-fix.jsonl
}
arm "--weight-decay 0" &
arm "--weight-decay 0.2" &
wait
