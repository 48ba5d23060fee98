#!/bin/sh
# The fresh test of the sigma-15 start (variance minima before iteration 1500 do not count where the estimate reads
# 20 or below): seed 2 of the 14 sigma-15 report crops at 128x128 (two workers, a and b), and its 64x64 guard
# (seed 0, 7 report crops; stopped unread once the test had failed). One thread each; fp32 on an AVX2-only CPU
# (the older rows: bf16). Replay: experiments/RESULTS-stop-gate.md, the last section.
cd /work/main
C="env PYTHONPATH=$PWD:$PWD/experiments nice -n 5 python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --tasks denoise:15 --iters 3000"
case "$1" in
  a) $C --sizes 128 --seed 2 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
       --out experiments/es_dev/rows-ticket-s15-seed2a.jsonl.gz ;;
  b) $C --sizes 128 --seed 2 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
       --out experiments/es_dev/rows-ticket-s15-seed2b.jsonl.gz ;;
  64) $C --sizes 64 --seed 0 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
       --out experiments/es_dev/rows-ticket64-s15.jsonl.gz ;;
esac
