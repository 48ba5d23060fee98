#!/bin/sh
# Issue 12, other tasks: the shipped channel ticket (dip-channel-house, round 2) against the dense net for
# SR x4 on the first 6 crops of the tune half, one thread per restore, one worker per command (run as
# 2026-11-30 20:00 on a machine at load 11-16: ~45 min wall per dense fit at nice 10). Resumable: rerun any
# line; rows already present are skipped. From the repo root. The report half was not run (the tune half
# decided: see RESULTS-sparse.md); its line is commented out below.
study() {
    nice -n 10 env PYTHONPATH="$PWD" python experiments/sparse_study.py --extra "--task sr --scale 4" \
        --out experiments/sparse/rows-sr.jsonl "$@"
}
TUNE=baboon,barbara,butterfly,comic,flowers,kodim02
study --half tune --priors ticket:r2 --images $TUNE &
study --half tune --priors dense --images baboon,barbara &
study --half tune --priors dense --images comic,flowers &
study --half tune --priors dense --images butterfly &
study --half tune --priors dense --images kodim02 &
wait
# study --half report --priors ticket:r2,dense --images baby,bird,coastguard,f16,foreman,lenna
PYTHONPATH=$PWD python experiments/sparse_report.py --per-crop experiments/sparse/rows-sr.jsonl
