#!/bin/sh
# The SR x4 ticket at a 3000-iteration cap (house_sr_ch:r2) against the dense net at the preset's 1500, seeds 1
# and 2 on the report crops: seed 0 (rows-sr3000.jsonl vs rows-sr2.jsonl) was level (+0.03 ± 0.23 dB); one seed
# cannot choose a default. Seed 1 on all 8 crops first, then seed 2. Two workers on disjoint crops, 1 thread each.
# From the repo root; resumable.
study() {  # $1 = seed, $2 = crops
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors house_sr_ch:r2 --seeds "$1" \
        --extra "--task sr --scale 4 --iters 3000" --out experiments/sparse/rows-sr-seeds.jsonl --half report --images "$2"
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors dense --seeds "$1" \
        --extra "--task sr --scale 4" --out experiments/sparse/rows-sr-seeds.jsonl --half report --images "$2"
}
(study 1 baby,bird,coastguard,f16; study 2 baby,bird,coastguard,f16) &
(study 1 foreman,lenna,monarch,zebra; study 2 foreman,lenna,monarch,zebra) &
wait
