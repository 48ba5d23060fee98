#!/bin/sh
# seed 1 (another noisy observation, net and input code) of the ticket's report crops: is the stop's gap stable?
cd /work/main
C="env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes 128 --seed 1"
$C --tasks denoise:25 --iters 2400 --images astronaut,baby,barbara,bridge,face,flowers,foreman,head,lena512,man,zebra \
  --out experiments/es_dev/rows-ticket-report-seed1.jsonl.gz
$C --tasks denoise:15 --iters 3000 --images astronaut,baby,barbara,bridge,face,flowers --out experiments/es_dev/rows-ticket-s15-seed1.jsonl.gz
$C --tasks denoise:50 --iters 2400 --images astronaut,baby,barbara,bridge,face,flowers --out experiments/es_dev/rows-ticket-s50-seed1.jsonl.gz
