#!/bin/sh
# The inpainting decay on a second seed (issue 17): the 7 report crops of RESULTS-decay-tasks.md (64x64 centre,
# Bernoulli 50%), seed 1, recorded to 2250 without a stop, with and without --weight-decay 0.2, one worker per
# arm (each its own rows file: es_collect reads what is done at start). From the repo root; resumable.
IM=astronaut,baby,barbara,bridge,face,flowers,foreman
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/es_collect.py --grid --tasks inpaint:bern --variants plain \
        --threads 1 --iters 2250 --images $IM --seed 1 --weight-decay "$1" \
        --out "experiments/es_dev/rows-tasks-inpaint-$2-seed1.jsonl.gz" > "experiments/es_dev/log.inpaint-$2-seed1" 2>&1
}
arm 0 wd0 &
arm 0.2 wd02 &
wait
