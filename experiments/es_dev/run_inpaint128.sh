#!/bin/sh
# Inpainting as lip runs it by default (the dense net, the fast preset: kernels decayed 0.2, no automatic stop, the
# EMA output at the 1875 cap, observed pixels put back), Bernoulli 50% masks, on 128x128 centre crops of the 14
# pictures of RESULTS-stop-tasks.md (the decision crops there were 64x64), seed 0, recorded to 2250 iterations
# without a stop. Does running to the cap stay near the peak at a size a user brings? (RESULTS-stop-tasks.md, end)
# usage: run_inpaint128.sh a|b  (a: the 7 tune pictures, b: the 7 report ones; one thread each). Resumable.
cd "$(dirname "$0")/../.." || exit 1
case "$1" in
  a) I=house,baboon512,bird,butterfly,coastguard,comic,f16 ;;
  b) I=astronaut,baby,barbara,bridge,face,flowers,foreman ;;
  *) echo "usage: run_inpaint128.sh a|b" >&2; exit 2 ;;
esac
env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --tasks inpaint:bern --variants plain \
  --threads 1 --sizes 128 --iters 2250 --weight-decay 0.2 --images $I \
  --out experiments/es_dev/rows-tasks-inpaint128-$1.jsonl.gz
