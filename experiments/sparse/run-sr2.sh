#!/bin/sh
# Issue 12, item 5, on all 16 crops: the SR x4 search's round-2 channel ticket (house_sr_ch:r2, 25% of the
# filters) against the dense net under today's fast preset (SR: EMA output, cap 1500), both halves, seed 0.
# Two workers on disjoint crops, 1 thread each. From the repo root; resumable (rows present are skipped).
study() {  # $1 = half, $2 = crops
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --priors house_sr_ch:r2,dense \
        --extra "--task sr --scale 4" --out experiments/sparse/rows-sr2.jsonl --half "$1" --images "$2"
}
(study tune baboon,barbara,butterfly,comic; study report baby,bird,coastguard,f16) &
(study tune flowers,kodim02,man,pepper; study report foreman,lenna,monarch,zebra) &
wait
PYTHONPATH=$PWD python experiments/sparse_report.py --per-crop experiments/sparse/rows-sr2.jsonl
