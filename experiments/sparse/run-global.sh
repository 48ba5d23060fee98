#!/bin/sh
# Random channels ranked globally as a cheaper default (RESULTS-sparse.md, "Random global channel masks"):
# two workers at nice 10, one thread each, today's fast preset. Round 2 keeps ~25% of the filters (1.75 GFLOP
# per iteration), round 3 of a 3-round draw ~12.5% (0.49 GFLOP). Tune half first (all four priors), then the
# report half for the rows the controls lack.
cd "$(dirname "$0")/../.." || exit 1
S="env PYTHONPATH=$PWD nice -n 10 python experiments/sparse_study.py --threads 1"
OUT=experiments/sparse/rows-global.jsonl
[ -f experiments/sparse/randch-global3-s0.safetensors ] ||
  PYTHONPATH=$PWD python -m lipcli prune sample:house-noisy --granularity channel --method random --rounds 3 --rate 0.5 \
    --seed 0 --slim -o experiments/sparse/randch-global3-s0.safetensors
P=randch-global3-s0:r3,randch-global-s0:r2,ticket:r2,dense
R="$S --half report --out $OUT"
nohup sh -c "$S --half tune --priors $P --out $OUT; $R --priors randch-global3-s0:r3" > experiments/sparse/log.global-a 2>&1 &
nohup sh -c "$S --half tune --priors $P --reverse --out $OUT; $R --priors randch-global-s0:r2 --images coastguard,lenna,monarch,zebra --reverse; $R --priors randch-global3-s0:r3 --reverse" \
  > experiments/sparse/log.global-b 2>&1 &
