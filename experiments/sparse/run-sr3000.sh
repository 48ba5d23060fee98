#!/bin/sh
# The SR x4 ticket (house_sr_ch:r2) with a 3000-iteration cap, twice the preset's: it was still climbing at 1500
# on every crop (RESULTS-sparse.md). Against the dense rows at the preset's 1500 (rows-sr2.jsonl and earlier).
# Two workers, one per half, one thread each. From the repo root; resumable.
study() {
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors house_sr_ch:r2 \
        --extra "--task sr --scale 4 --iters 3000" --out experiments/sparse/rows-sr3000.jsonl --half "$1"
}
study tune &
study report &
wait
