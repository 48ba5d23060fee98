#!/bin/sh
# The shipped channel ticket (dip-channel-house, found on denoising, fitted compacted) vs the dense DIP on
# MRI: the bundled brain and phantom (128x128) at 4x and 8x with random column masks, and the brain at 4x
# with the 2-D variable-density mask; the same protocol as run.sh (fast preset, auto-stopped, seed 0,
# one thread). The zero-filled reconstruction and the oracle best (labelled) come from the same runs.
# Run from the repository root: sh experiments/mri/run_ticket.sh  (LIP="python -m lipcli" to run a checkout)
# Writes experiments/mri/ticket/<prior>_<image>_<mask>_<acc>x.json and .time, and appends every run as one
# line to experiments/mri/ticket/rows.jsonl as it finishes (a finished run is skipped on a re-run).
set -e
cd "$(dirname "$0")"
mkdir -p ticket
LIP=${LIP:-lip}
run() {  # prior image mask-type acceleration
  name=$1_$2_$3_$4x
  [ -s ticket/$name.json ] && return 0
  if [ "$1" = ticket ]; then prior="--mask dip-channel-house"; else prior="--dense"; fi
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o ticket/$name.time \
    nice -n 10 $LIP restore sample:$2 --task mri --simulate --acceleration $4 --center-fraction 0.08 \
    --mask-type $3 $prior --seed 0 --threads 1 -o ticket/$name.png --json > ticket/$name.tmp
  mv ticket/$name.tmp ticket/$name.json
  jq -c --arg prior "$1" --arg time "$(cat ticket/$name.time)" '. + {prior_label: $prior, time: $time}' \
    ticket/$name.json >> ticket/rows.jsonl
}
for image in mri-brain phantom; do
  for acc in 4 8; do run ticket $image random $acc; done
done
run ticket mri-brain variable-density 4
run dense mri-brain variable-density 4
for image in mri-brain phantom; do
  for acc in 4 8; do run dense $image random $acc; done
done
