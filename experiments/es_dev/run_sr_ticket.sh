#!/bin/sh
# SR x4 as lip fits it by default: the SR ticket dip-channel-house-sr4 with its entry's settings (3000-iteration
# cap, window 200, patience 300, EMA 0.99), the stop study's 29 pictures at 128x128 (the high-resolution crop; its
# 32x32 Lanczos-2 reduction is the observation), seed 0, no early stop, recorded to 3600 iterations so that later
# stops can be scored. How far under its peak does the shipped stop land on the ticket? (RESULTS-stop-sr-ticket.md)
# usage: run_sr_ticket.sh a|b  (a/b split the pictures so two runs share the two cores, one thread each). Resumable.
cd "$(dirname "$0")/../.." || exit 1
A=house,astronaut,baboon512,baby,bird,barbara,butterfly,bridge,coastguard,face,comic,flowers,f16,foreman,kodim02
B=lena512,monarch,man,pepper,zebra,sf4,library,kate,vase,cameraman-gray256,hill-gray512,boat-gray512,couple-gray512,montage-gray256
case "$1" in a) I=$A ;; b) I=$B ;; *) echo "usage: run_sr_ticket.sh a|b" >&2; exit 2 ;; esac
env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain \
  --mask dip-channel-house-sr4 --threads 1 --sizes 128 --tasks sr:4 --iters 3600 --images $I \
  --out experiments/es_dev/rows-sr-ticket$1.jsonl.gz
