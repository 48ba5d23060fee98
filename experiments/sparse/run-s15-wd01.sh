#!/bin/sh
# A lighter kernel decay at sigma 15: 0.2 gained on the tune crops and lost on the report crops of seed 1 (the stop
# landed after the decayed fit's peak; RESULTS-weight-decay.md, "Sigma 15 again" and "Sigma 15 with 0.1"). The default prior with --weight-decay 0.1, both halves,
# seeds 0 and 1 (one worker each), 128x128 centre crops, one thread per restore. The plain arm is the
# --weight-decay 0 rows of run-s15-fix.sh in the same file. From the repo root; resumable.
arm() {
    nice -n 5 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors default --half all --sigmas 15 \
        --seeds "$1" --threads 1 --extra "--weight-decay 0.1" --out experiments/sparse/rows-s15-fix.jsonl
}
arm 0 &
arm 1 &
wait
