#!/bin/sh
# Sigma 10: the default ticket's trajectories past its 3000-iteration cap (to 5000), no early stop, 16 of the stop
# study's crops (the first 8 of each half), seed 0, 128x128: does a larger cap pay at low noise, where the plain
# ticket was still climbing at 3000 on 10 of 16 crops (RESULTS-weight-decay.md, "Sigma 10")? Replayed by
# experiments/stop_decay.py --caps (RESULTS-cap-low-noise.md). usage: run_cap10.sh a|b (one thread each; run both
# at once). Resumable.
cd "$(dirname "$0")/../.." || exit 1
C="env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes 128 --seed 0 --tasks denoise:10 --iters 5000"
case "$1" in
  a) $C --images house,astronaut,baboon512,baby,bird,barbara,butterfly,bridge --out experiments/es_dev/rows-ticket-cap-s10a.jsonl.gz ;;
  b) $C --images coastguard,face,comic,flowers,f16,foreman,kodim02,lena512 --out experiments/es_dev/rows-ticket-cap-s10b.jsonl.gz ;;
  *) echo "usage: run_cap10.sh a|b" >&2; exit 2 ;;
esac
