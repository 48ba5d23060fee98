#!/bin/sh
# Chain every part of the collection in ONE process at a time (the box has 2 shared cores).
# Resumable: a re-run skips rows already in rows.jsonl.gz. Run from the worktree root:
#   nohup nice -n 19 sh experiments/es_dev/run_all.sh >> experiments/es_dev/log 2>&1 &
N=${N:-400}
i=${START:-1}
while [ "$i" -le "$N" ]; do
  echo "== part $i/$N $(date -u +%H:%M:%S)"
  env PYTHONPATH="$PWD" python experiments/es_collect.py --part "$i/$N" || exit 1
  i=$((i + 1))
done
