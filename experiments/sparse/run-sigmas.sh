#!/bin/bash
# The default ticket against the dense net at other noise levels and seeds (RESULTS-sparse.md, "Other noise
# levels and seeds"), as run on 2026-11-30: report half, today's fast preset, one thread per restore. A queue
# in priority order (sigma 50, sigma 15, the one missing sigma-25 ticket row, seed 1 at sigma 25); run it as
# two workers (`nohup nice -n 10 experiments/sparse/run-sigmas.sh &`, twice). Each job is claimed once
# (mkdir in $CLAIMS), so the workers share the queue; rows already in the file are skipped (resumable).
# Usage: run-sigmas.sh [LAST_START_EPOCH_DENSE [LAST_START_EPOCH_TICKET]]: start no job after these times.
cd "$(dirname "$0")/../.."
OUT=experiments/sparse/rows-sigmas.jsonl
CLAIMS=${CLAIMS:-/tmp/sigmas-claims}
mkdir -p "$CLAIMS"
REPORT="baby bird coastguard f16 foreman lenna monarch zebra"
jobs=()
for s in 50 15; do for i in $REPORT; do jobs+=("$s 0 dense $i" "$s 0 ticket:r2 $i"); done; done
jobs+=("25 0 ticket:r2 foreman")  # rows-gate2.jsonl holds the other 15 sigma-25 rows under today's preset
for i in $REPORT; do jobs+=("25 1 dense $i" "25 1 ticket:r2 $i"); done
for job in "${jobs[@]}"; do
    read -r sigma seed prior image <<< "$job"
    last=${2:-${1:-9999999999}}; [ "$prior" = dense ] && last=${1:-9999999999}
    [ "$(date +%s)" -lt "$last" ] || continue
    mkdir "$CLAIMS/${sigma}_${seed}_${prior}_${image}" 2>/dev/null || continue
    /usr/bin/time -a -o experiments/sparse/log-sigmas-cpu.txt -f "%e s wall %U user %S sys: $job" \
        env PYTHONPATH="$PWD" python experiments/sparse_study.py --half report --images "$image" \
        --sigmas "$sigma" --seeds "$seed" --priors "$prior" --threads 1 --out "$OUT"
done
