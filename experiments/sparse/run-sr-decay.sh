#!/bin/sh
# Issue 17 (SR's peak lies past the cap): the default SR x4 prior (the dip-channel-house-sr4 ticket, cap 3000,
# EMA output, automatic stop) with and without the kernel decay of the denoising ticket (--weight-decay 0.2).
# 128x128 centre crops, seed 0, one thread per restore, one worker per arm. $1 = half (tune first; report only
# once tune has chosen). From the repo root; resumable.
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half "$1" \
        --extra "--task sr --scale 4$2" --out experiments/sparse/rows-sr-decay.jsonl
}
arm "${1:-tune}" "" &
arm "${1:-tune}" " --weight-decay 0.2" &
wait
