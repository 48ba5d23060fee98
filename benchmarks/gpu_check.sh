#!/usr/bin/env bash
# GPU check (issue 12.7), under 5 minutes on a CUDA machine: the tests marked `cuda`, then one markdown table
# of per-iteration time and peak memory, reference loop vs lip (dense and a compacted channel ticket; fp32,
# TF32, bf16) at 256² and 512² (benchmarks/gpu_check.py says what each row is). Written on a machine without
# a GPU and never run on one: see the "not run" list in gpu_check.py's docstring.
#   bash benchmarks/gpu_check.sh [gpu_check.py options, e.g. --device cuda:1 --sizes 256]
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
BUDGET=290  # seconds for the whole check

if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False); nothing checked" >&2
    exit 1
fi
SECONDS=0
timeout 120 python -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider  # about 30 s with a GPU
tests=$?
left=$((BUDGET - SECONDS))
# The benchmark skips the paths that would start after its budget; timeout is the hard stop.
timeout "$left" python benchmarks/gpu_check.py --budget $((left - 45)) "$@"
bench=$?
echo "gpu_check: tests exit $tests, benchmark exit $bench, ${SECONDS} s" >&2
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
