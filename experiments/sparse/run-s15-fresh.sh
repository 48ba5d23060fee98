#!/bin/sh
# The fresh check of the kernel decay 0.1 at sigma 15 (RESULTS-weight-decay.md, "Sigma 15 with 0.1"): 8 crops in
# neither half of sparse_study.py (and none the same picture as one there), seed 0, --weight-decay 0.1 against 0,
# one worker per arm, 128x128 centre crops, one thread per restore. From the repo root; resumable.
FRESH=astronaut,bridge,face,hill-gray512,couple-gray512,library,woman,boat-gray512
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half fresh --images "$FRESH" \
        --sigmas 15 --seeds 0 --threads 1 --extra "$1" --out experiments/sparse/rows-s15-fresh.jsonl
}
arm "--weight-decay 0" &
arm "--weight-decay 0.1" &
wait
