#!/bin/sh
# Controls for the channel ticket (RESULTS-sparse.md, "Controls"): three workers at nice 10, one thread each,
# today's fast preset; the deep decoder under its own protocol (--config deep-decoder: 1900 iterations, no stop).
cd "$(dirname "$0")/../.." || exit 1
S="env PYTHONPATH=$PWD nice -n 10 python experiments/sparse_study.py --half report --threads 1"
OUT=experiments/sparse/rows-controls.jsonl
for s in 0 1 2; do
  [ -f experiments/sparse/randch-s$s.safetensors ] ||
    PYTHONPATH=$PWD python experiments/random_channel_ticket.py --seed $s --out experiments/sparse/randch-s$s.safetensors
done
nohup sh -c "$S --priors randch-s0:r2 --out $OUT; $S --priors randch-s1:r2,randch-s2:r2 --images baby,bird,coastguard --out $OUT" \
  > experiments/sparse/log.controls-a 2>&1 &
nohup $S --priors dd-k302 --extra "--config deep-decoder" --out $OUT > experiments/sparse/log.controls-b 2>&1 &
nohup $S --priors w64 --out $OUT > experiments/sparse/log.controls-c 2>&1 &
# a fourth worker, started a few minutes later, took the random seeds 1 and 2 from the other end:
nohup $S --priors randch-s1:r2,randch-s2:r2 --images baby,bird,coastguard --reverse --out $OUT \
  > experiments/sparse/log.controls-d 2>&1 &
# afterwards, the deep decoder under lip's fast preset (auto-stop, EMA, bf16), two crops, one worker each:
for crop in baby bird; do
  nohup $S --priors dd-k302 --images $crop --out $OUT > experiments/sparse/log.controls-dd-$crop 2>&1 &
done
# last, random channels ranked globally (lip's own `--method random`: about 25% per layer, not the ticket's counts):
PYTHONPATH=$PWD python -m lipcli prune sample:house-noisy --granularity channel --method random --rounds 2 --rate 0.5 \
  --seed 0 --slim -o experiments/sparse/randch-global-s0.safetensors
nohup $S --priors randch-global-s0:r2 --images baby,f16 --out $OUT > experiments/sparse/log.controls-g 2>&1 &
nohup $S --priors randch-global-s0:r2 --images foreman,bird --reverse --out $OUT > experiments/sparse/log.controls-h 2>&1 &
# and w32 under today's preset on the same four crops:
nohup $S --priors w32 --images baby,f16 --out $OUT > experiments/sparse/log.controls-i 2>&1 &
nohup $S --priors w32 --images foreman,bird --reverse --out $OUT > experiments/sparse/log.controls-j 2>&1 &
