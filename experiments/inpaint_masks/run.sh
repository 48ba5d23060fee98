#!/bin/sh
# Inpainting trajectories on text and hole masks (the Bernoulli study never recorded them): the DIP masks on
# their images, DD's scribble-text mask on 512x512 images. Dense net, fast preset, no stop, horizon 2250,
# seed 0, one thread. Resumable: re-run to continue.
# Usage (from the repo root): sh experiments/inpaint_masks/run.sh "kate:kate_mask.png lena512:scribble-text_mask.png" 64,128
PAIRS=${1:-"kate:kate_mask.png library:library_mask.png vase:vase_mask.png"}
SIZES=${2:-"64,128"}
OUT=experiments/es_dev/rows-tasks-inpaint-masks.jsonl.gz
for pair in $PAIRS; do
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python experiments/es_collect.py --grid --images "${pair%%:*}" \
        --sizes "$SIZES" --tasks "inpaint:${pair#*:}" --variants plain --threads 1 --iters 2250 --out "$OUT"
done
