#!/bin/sh
# A sparse prior on MRI: the shipped denoising ticket (masks/house64-imp-fast.safetensors, round 3 = 73.8%
# sparse, found blind on a noisy 64x64 House crop; its theta0), brain 4x, otherwise as run.sh.
set -e
cd "$(dirname "$0")"
/usr/bin/time -f "%e s wall, %U s user, %S s sys" -o mri-brain_4x_ticket.time \
  nice -n 10 lip restore sample:mri-brain --task mri --simulate --acceleration 4 --center-fraction 0.08 \
  --mask-type random --seed 0 --threads 1 --mask ../../masks/house64-imp-fast.safetensors \
  -o mri-brain_4x_ticket.png --json > mri-brain_4x_ticket.json
