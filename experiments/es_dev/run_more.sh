#!/bin/sh
# ticket trajectories at sigma 15 (horizon 3000) and 50 (1800: every sigma-50 peak so far came before 1000) on the
# es_dev crops that had none: 9 more tune, 8 more report (head is face). One worker per noise level, one thread each.
cd /work/main
IM=baboon512,foreman,kodim02,lena512,monarch,man,pepper,zebra,sf4,library,kate,vase,cameraman-gray256,hill-gray512,boat-gray512,couple-gray512,montage-gray256
C="env PYTHONPATH=$PWD:$PWD/experiments nice -n 5 python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes 128"
case "$1" in
  15) $C --tasks denoise:15 --iters 3000 --images $IM --out experiments/es_dev/rows-ticket-s15-more.jsonl.gz ;;
  50) $C --tasks denoise:50 --iters 1800 --images $IM --out experiments/es_dev/rows-ticket-s50-more.jsonl.gz ;;
esac
# second worker for sigma 15 once sigma 50 had finished: the last four crops (the first worker was stopped before them)
case "$1" in
  15b) $C --tasks denoise:15 --iters 3000 --images hill-gray512,boat-gray512,couple-gray512,montage-gray256 \
         --out experiments/es_dev/rows-ticket-s15-more2.jsonl.gz ;;
esac
