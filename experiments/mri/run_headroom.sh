#!/bin/sh
# The MRI headroom (--headroom: a net output of 1 = that many zero-filled peaks) at 1, what lip fitted before
# 2026-12-08, against 1.5, today's default: the dense DIP on the bundled brain and phantom (128x128), random
# column, variable-density and radial masks at 4x and 8x, the fast preset, auto-stopped, one thread. The
# zero-filled reconstruction and the oracle best (labelled) come from the same runs.
# Run from the repository root: sh experiments/mri/run_headroom.sh PART PARTS SEED
#   (PART of PARTS: run every PARTS-th setting from PART, e.g. 0 2 and 1 2 side by side on two cores;
#   LIP="python -m lipcli" to run a checkout)
# Writes experiments/mri/headroom/<headroom>_<image>_<mask>_<acc>x_s<seed>.json and .time, and appends every run
# as one line to experiments/mri/headroom/rows.jsonl as it finishes (a finished run is skipped on a re-run).
set -e
cd "$(dirname "$0")"
mkdir -p headroom
LIP=${LIP:-lip}
PART=${1:-0} PARTS=${2:-1} SEED=${3:-0}
i=0
run() {  # headroom image mask-type acceleration
  i=$((i + 1))
  [ $(( (i - 1) % PARTS )) -eq "$PART" ] || return 0
  name=h$1_$2_$3_$4x_s$SEED
  [ -s headroom/$name.json ] && return 0
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o headroom/$name.time \
    $LIP restore sample:$2 --task mri --simulate --acceleration $4 --center-fraction 0.08 \
    --mask-type $3 --headroom $1 --seed $SEED --threads 1 -o headroom/$name.png --json > headroom/$name.tmp
  mv headroom/$name.tmp headroom/$name.json
  jq -c --arg time "$(cat headroom/$name.time)" '. + {time: $time}' headroom/$name.json >> headroom/rows.jsonl
}
for image in mri-brain phantom; do
  for mask in variable-density radial random; do
    for acc in 8 4; do
      [ $mask = radial ] && [ $acc = 4 ] && continue
      for h in 1 1.5; do run $h $image $mask $acc; done
    done
  done
done
