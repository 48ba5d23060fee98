#!/bin/sh
# The issue-12 prior study as it was run on 2026-11-30 (resumable: rerun any line; rows already present are
# skipped). From the repo root; each worker is one restore at a time, one thread each.
set -e
T=experiments/sparse/house_ch_l1layer.safetensors
[ -f "$T" ] || env PYTHONPATH="$PWD" python -m lipcli prune sample:house-noisy --granularity channel \
    --channel-score l1-layer --rounds 4 --rate 0.5 --iters 300 --seed 0 --threads 1 -o "$T"
S="env PYTHONPATH=$PWD python experiments/sparse_study.py --half all"
$S --priors w32,dense &
$S --priors dense,w32 --reverse &
$S --priors ticket:r3,w16,ticket:r2 --out experiments/sparse/rows-b.jsonl &
$S --priors ticket:r2,ticket:r3 --extra "--iters 2400" --reverse --out experiments/sparse/rows-d.jsonl &
wait
PYTHONPATH=$PWD python experiments/sparse_report.py experiments/sparse/rows.jsonl experiments/sparse/rows-b.jsonl \
    experiments/sparse/rows-d.jsonl
