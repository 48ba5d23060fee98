#!/bin/sh
# Inpainting as lip runs it by default (the dense net, the fast preset: kernels decayed 0.2, no automatic stop, the
# EMA output at the 1875 cap, observed pixels put back), Bernoulli 50% masks, on 128x128 centre crops of the 14
# pictures of RESULTS-stop-tasks.md (the decision crops there were 64x64), recorded to 2250 iterations without a
# stop. Does running to the cap stay near the peak at a size a user brings? (RESULTS-stop-tasks.md, end)
# With `ticket`, the same crops fit round 2 of the inpainting channel ticket experiments/sparse/house_inpaint_ch
# (25% of the filters), recorded to 7500 iterations: can it run longer for less? (RESULTS-inpaint-ticket.md)
# With `mask=STEM`, round 1 of experiments/sparse/STEM.safetensors (a mask of experiments/width_masks.py), recorded to
# 5000 iterations: the inpainting ticket's widths with four skip filters per level (RESULTS-inpaint-ticket.md, end).
# With `jitter=V`, the dense net with the input jitter V instead of the preset's 0.03 (RESULTS-inpaint-jitter.md).
# With `long`, the dense net as by default, recorded to 3750 iterations: what a longer cap buys (RESULTS-inpaint-cap.md).
# With `signal`, the same fits as `long` into a file of their own, with es_collect's blind hole signals (nbr, rough),
# added after the long rows were recorded: can a blind signal tell a turning fit from a climbing one?
# (RESULTS-inpaint-signal.md)
# usage: run_inpaint128.sh a|b [SEED] [ticket|mask=STEM|jitter=V|long|signal]  (a: the 7 tune pictures, b: the 7 report ones; one thread each;
# SEED 0 by default, which also keeps the first rows' file names). Resumable.
cd "$(dirname "$0")/../.." || exit 1
USAGE="usage: run_inpaint128.sh a|b [SEED] [ticket|mask=STEM|jitter=V|long|signal]"
case "$1" in
  a) I=house,baboon512,bird,butterfly,coastguard,comic,f16 ;;
  b) I=astronaut,baby,barbara,bridge,face,flowers,foreman ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
SEED=${2:-0}
case "$3" in
  "") PRIOR=""; ITERS=2250; NAME=tasks-inpaint128 ;;
  ticket) PRIOR="--mask experiments/sparse/house_inpaint_ch.safetensors:r2"; ITERS=7500; NAME=inpaint-ticket128 ;;
  mask=*) PRIOR="--mask experiments/sparse/${3#mask=}.safetensors:r1"; ITERS=5000; NAME=inpaint-${3#mask=}128 ;;
  long) PRIOR=""; ITERS=3750; NAME=tasks-inpaint128-long ;;
  signal) PRIOR=""; ITERS=3750; NAME=inpaint128-signal ;;
  jitter=*) PRIOR="--reg-noise ${3#jitter=}"; ITERS=2250; NAME=tasks-inpaint128-jit${3#jitter=} ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
SUF=$([ "$SEED" = 0 ] || echo "-s$SEED")
env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --tasks inpaint:bern --variants plain \
  --threads 1 --sizes 128 --iters $ITERS --weight-decay 0.2 --seed "$SEED" --images $I $PRIOR \
  --out experiments/es_dev/rows-$NAME-$1$SUF.jsonl.gz
