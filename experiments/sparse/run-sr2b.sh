#!/bin/sh
# The second worker of run-sr2.sh, restarted at 10:58 without the crops whose rows exist from the same code path
# (rows-tasks.jsonl: dense; rows-tasktickets.jsonl: house_sr_ch:r2 for baboon, barbara, butterfly, baby; this
# session's baboon rows reproduced both to 0.01 dB).
study() {  # $1 = half, $2 = crops
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors house_sr_ch:r2,dense \
        --extra "--task sr --scale 4" --out experiments/sparse/rows-sr2.jsonl --half "$1" --images "$2"
}
study tune comic
study report bird,coastguard,f16
