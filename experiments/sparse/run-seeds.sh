#!/bin/sh
# Seeds 1 and 2 of the default prior against the dense net (RESULTS-sparse.md, "Seeds"): the report half at
# sigma 25, today's fast preset, two workers at nice 10, one thread each. A seed changes the net's
# initialisation, its input code, the jitter and the noise drawn on the crop (lip restore --seed).
cd "$(dirname "$0")/../.." || exit 1
S="env PYTHONPATH=$PWD nice -n 10 python experiments/sparse_study.py --threads 1 --half report --priors ticket:r2,dense"
OUT=experiments/sparse/rows-seeds.jsonl
nohup $S --seeds 1,2 --out $OUT > experiments/sparse/log.seeds-a 2>&1 &
nohup $S --seeds 1,2 --reverse --out $OUT > experiments/sparse/log.seeds-b 2>&1 &
