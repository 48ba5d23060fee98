#!/bin/sh
# ticket trajectories at sigma 15 (horizon 3000) and 50 (2400), 8 more crops, one process at a time
cd /work/main
IM=butterfly,barbara,coastguard,bridge,comic,face,f16,flowers
env PYTHONPATH="$PWD:$PWD/experiments" python experiments/es_collect.py --grid --variants plain --mask dip-channel-house \
  --tasks denoise:15 --iters 3000 --threads 1 --sizes 128 --images $IM --out experiments/es_dev/rows-ticket-s15.jsonl.gz
env PYTHONPATH="$PWD:$PWD/experiments" python experiments/es_collect.py --grid --variants plain --mask dip-channel-house \
  --tasks denoise:50 --iters 2400 --threads 1 --sizes 128 --images $IM --out experiments/es_dev/rows-ticket-s50.jsonl.gz
