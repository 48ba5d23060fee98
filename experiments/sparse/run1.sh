#!/bin/sh
# Part 1 of the issue-12 study (resumable; run from the repo root):
#   nohup sh experiments/sparse/run1.sh >> experiments/sparse/log 2>&1 &
set -e
T=experiments/sparse/house_ch_l1layer.safetensors
[ -f "$T" ] || env PYTHONPATH="$PWD" python -m lipcli prune sample:house-noisy --granularity channel \
    --channel-score l1-layer --rounds 4 --rate 0.5 --iters 300 --seed 0 -o "$T"
env PYTHONPATH="$PWD" python experiments/sparse_study.py --half all --priors dense,w32,ticket:r3,w16,ticket:r2
