#!/bin/sh
# SR x4 as lip fits it by default: the SR ticket dip-channel-house-sr4 with its entry's settings (3000-iteration
# cap, window 200, patience 300, EMA 0.99), centre crops of the stop study's 29 pictures (the high-resolution crop;
# its Lanczos-2 reduction by 4 is the observation), seed 0, no early stop, recorded to 3600 iterations so that later
# stops can be scored. How far under its peak does the shipped stop land on the ticket? (RESULTS-stop-sr-ticket.md)
# With a third argument, `ticket` or `mask=STEM` (round 1 of experiments/sparse/STEM.safetensors, fitted with the same
# settings), the 14 pictures of run_inpaint128.sh recorded to 3000: the ticket against its widths with four skip
# filters per level (RESULTS-stop-sr-ticket.md, "Four skip filters").
# usage: run_sr_ticket.sh a|b [SIZE] [ticket|mask=STEM]  (a/b split the pictures so two runs share the two cores, one
# thread each; SIZE 128 by default, 64, or 256 on six pictures, es_collect's BIG_SUBSET). Resumable.
cd "$(dirname "$0")/../.." || exit 1
USAGE="usage: run_sr_ticket.sh a|b [64|128|256] [ticket|mask=STEM]"
SIZE=${2:-128}
case "$SIZE" in
  256) A=house,kodim02,monarch; B=lena512,baby,zebra ;;
  64|128) A=house,astronaut,baboon512,baby,bird,barbara,butterfly,bridge,coastguard,face,comic,flowers,f16,foreman,kodim02
          B=lena512,monarch,man,pepper,zebra,sf4,library,kate,vase,cameraman-gray256,hill-gray512,boat-gray512,couple-gray512,montage-gray256 ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
MASK=dip-channel-house-sr4; ITERS=3600; TAG=""
case "$3" in
  "") ;;
  ticket|mask=*) A=house,baboon512,bird,butterfly,coastguard,comic,f16; B=astronaut,baby,barbara,bridge,face,flowers,foreman
                 ITERS=3000; TAG="-${3#mask=}"
                 [ "$3" = ticket ] || MASK="experiments/sparse/${3#mask=}.safetensors:r1" ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
case "$1" in a) I=$A ;; b) I=$B ;; *) echo "$USAGE" >&2; exit 2 ;; esac
SUF=$([ "$SIZE$TAG" = 128 ] || echo "-$SIZE$TAG")
env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain \
  --mask "$MASK" --threads 1 --sizes "$SIZE" --tasks sr:4 --iters $ITERS --images $I \
  --out experiments/es_dev/rows-sr-ticket$SUF$1.jsonl.gz
