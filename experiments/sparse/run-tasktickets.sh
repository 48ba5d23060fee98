#!/bin/sh
# Issue 12, item 5: channel tickets searched for SR x4 and inpainting themselves (blind, on the clean bundled
# House crop degraded by the task: `lip prune --simulate sample:house`), against the dense rows of
# rows-tasks.jsonl (same fast preset: the fitting code and presets did not change since bd1344f).
# From the repo root. Resumable: rerun it; a finished search is not redone and rows present are skipped.
# As run 2026-12-01 02:37-03:50 (load 8-12): each search was stopped (SIGTERM) once its third session began,
# with rounds 1 and 2 saved (round 3 would have cost two more dense sessions before a deadline); each task's
# r1 and r2 studies then ran side by side. The inpainting r1 study was stopped during baby. RESULTS-sparse.md.
search() {  # $1 = task name, then the task's flags
    out=experiments/sparse/house_$1_ch.safetensors
    shift
    [ -e "$out" ] || nice -n 10 env PYTHONPATH="$PWD" python -m lipcli prune --simulate sample:house "$@" \
        --granularity channel --channel-score l1-layer --rounds 3 --rate 0.5 --seed 0 --slim --threads 1 -o "$out"
}
study() {  # $1 = the task's restore flags, $2 = prior
    for half in "tune --images baboon,barbara,butterfly" "report --images baby"; do
        nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors "$2" --extra "$1" \
            --out experiments/sparse/rows-tasktickets.jsonl --half $half
    done
}
# SR x4 searches at its fast preset's 1200 iterations per round, inpainting at its 1500 (see RESULTS).
search sr --task sr --scale 4 --iters 1200 &
search inpaint --task inpaint --keep 0.5 --iters 1500 &
wait
for r in 1 2; do
    study "--task sr --scale 4" house_sr_ch:r$r &
    study "--task inpaint --keep 0.5" house_inpaint_ch:r$r &
done
wait
PYTHONPATH=$PWD python experiments/sparse_report.py --per-crop experiments/sparse/rows-tasks.jsonl \
    experiments/sparse/rows-tasktickets.jsonl
