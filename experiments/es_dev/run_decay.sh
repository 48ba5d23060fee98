#!/bin/sh
# The default ticket's trajectories with the kernel decay it now ships (0.1 where the blind estimate reads 12.5-20,
# 0.2 at 20-37.5: the entry's weight_decay), the stop study's 29 pictures at 128x128 (head is face): the
# same noise, net and input code as rows-ticket-s15*.jsonl.gz and rows-ticket*.jsonl.gz (sigma 25), which were
# recorded without decay. What is the shipped stop's gap with the decay, and does another rule catch its peak?
# usage: run_decay.sh 15|25 [SEED] [a|b]  (seed 0 and all 29 by default; a/b split the pictures so two runs share
# the two cores, one thread each). Resumable.
cd "$(dirname "$0")/../.." || exit 1
USAGE="usage: run_decay.sh 15|25 [SEED] [a|b]"
SEED=${2:-0}
C="env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes 128 --seed $SEED"
A=house,astronaut,baboon512,baby,bird,barbara,butterfly,bridge,coastguard,face,comic,flowers,f16,foreman,kodim02
B=lena512,monarch,man,pepper,zebra,sf4,library,kate,vase,cameraman-gray256,hill-gray512,boat-gray512,couple-gray512,montage-gray256
case "$3" in a) I=$A ;; b) I=$B ;; "") I=$A,$B ;; *) echo "$USAGE" >&2; exit 2 ;; esac
SUF=$([ "$SEED" = 0 ] || echo "-seed$SEED")$([ -z "$3" ] || echo "$3")
case "$1" in
  15) $C --tasks denoise:15 --iters 3000 --images $I --out experiments/es_dev/rows-ticket-decay-s15$SUF.jsonl.gz ;;
  25) $C --tasks denoise:25 --iters 2400 --images $I --out experiments/es_dev/rows-ticket-decay-s25$SUF.jsonl.gz ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
