#!/bin/sh
# MRI at 4x and 8x on the bundled brain and phantom (128x128): dense DIP, fast preset, auto-stopped,
# with the zero-filled reconstruction and the oracle best (labelled) from the same run.
# Run from the repository root: sh experiments/mri/run.sh  (writes experiments/mri/*.json, *.png, *.time)
set -e
cd "$(dirname "$0")"
for image in mri-brain phantom; do
  for acc in 4 8; do
    /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o ${image}_${acc}x.time \
      nice -n 10 lip restore sample:$image --task mri --simulate --acceleration $acc --center-fraction 0.08 \
      --mask-type random --seed 0 --threads 1 -o ${image}_${acc}x.png --json > ${image}_${acc}x.json
  done
done
