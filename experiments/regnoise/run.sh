#!/bin/bash
# The default prior's input jitter (RESULTS-reg-noise.md): the shipped ticket under today's fast preset with
# --reg-noise 1/30 (today's), 1/45, 1/60 and 0, sigma 25, seed 0, one thread per restore, through the real
# CLI (experiments/sparse_study.py). Run as two workers (`nohup nice -n 10 experiments/regnoise/run.sh HALF
# ARMS &`, twice): each job is claimed once (mkdir in $CLAIMS), rows already in the file are skipped.
# HALF: tune or report; ARMS: comma list of reg-noise values, "today" = no flag, V:LR = also --lr LR;
# SIGMAS: default 25; SEED: default 0; SIZES: crop sides, default 128; OUT: default rows-HALF.jsonl.
cd "$(dirname "$0")/../.." || exit 1
HALF=$1; ARMS=${2:-today,0.0222,0.0167,0}; SIGMAS=${SIGMAS:-25}; SEED=${SEED:-0}; SIZES=${SIZES:-128}
OUT=${OUT:-experiments/regnoise/rows-$HALF.jsonl}
CLAIMS=${CLAIMS:-/tmp/regnoise-claims}
mkdir -p "$CLAIMS"
if [ "$HALF" = tune ]; then IMAGES="baboon barbara butterfly comic flowers kodim02 man pepper"
else IMAGES="baby bird coastguard f16 foreman lenna monarch zebra"; fi
for sigma in ${SIGMAS//,/ }; do for image in $IMAGES; do for arm in ${ARMS//,/ }; do
    mkdir "$CLAIMS/${HALF}_${SIZES}_${sigma}_${SEED}_${image}_${arm}" 2>/dev/null || continue
    extra=""; [ "$arm" = today ] || extra="--reg-noise ${arm%%:*}"
    [ "${arm#*:}" = "$arm" ] || extra="$extra --lr ${arm#*:}"
    env PYTHONPATH="$PWD" python experiments/sparse_study.py --half "$HALF" --images "$image" --sigmas "$sigma" \
        --sizes "$SIZES" --seeds "$SEED" --priors ticket:r2 --threads 1 --extra "$extra" --out "$OUT"
done; done; done
