#!/bin/sh
# Issue 12, item 5: the shipped channel ticket (dip-channel-house, round 2) against the dense net for SR x4
# and inpainting (Bernoulli 50%, seeded by --seed 0) under the fast preset of 2026-11-30 (EMA 0.99 output,
# caps SR 1500 / inpainting 1875). 128x128 centre crops, seed 0, one thread per restore, two workers (one per
# task), each the tune crops first, then the report crops. Resumable: rerun it; rows present are skipped.
# From the repo root. The "25" in the row keys is the sigma flag, unused by these noise-free tasks.
# As run 2026-11-30 21:32-22:55 (load 8-10): the report half was stopped after baby (bird had no dense row yet).
study() {
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors ticket:r2,dense \
        --out experiments/sparse/rows-tasks.jsonl "$@"
}
worker() {
    study --half tune --images baboon,barbara,butterfly --extra "$1"
    study --half report --images baby,bird,coastguard --extra "$1"
}
worker "--task sr --scale 4" &
worker "--task inpaint --keep 0.5" &
wait
PYTHONPATH=$PWD python experiments/sparse_report.py --per-crop experiments/sparse/rows-tasks.jsonl
