#!/bin/sh
# The kernel decay at sigma 15 again, after the rollback fix (d4068f5): its report-half loss (-0.13 dB) came with
# 34 rollbacks over 16 crops, taken from a snapshot one step past its loss. The default prior (no decay at an
# estimated sigma <= 20) against the same with --weight-decay 0.2, both halves, seed 0, 128x128 centre crops,
# one thread per restore, one worker per arm. From the repo root; resumable.
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half all --sigmas 15 \
        --threads 1 --extra "$1" --out experiments/sparse/rows-s15-fix.jsonl
}
arm "" &
arm "--weight-decay 0.2" &
wait
