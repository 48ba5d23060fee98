# Tune half with Probe (es_collect --probe 64): constant step to 2250, and the step decayed over the last 20% of 1875.
cd "$(dirname "$0")/../.."
TUNE=house,baboon512,bird,butterfly,coastguard,comic,f16
run() {  # out, then es_collect's options
    out=$1; shift
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid \
        --tasks inpaint:bern --variants plain --threads 1 --images "${IMAGES:-$TUNE}" --lr 0.01 --probe 64 "$@" \
        --out experiments/inpaint_lr/$out.jsonl.gz
}
run rows-probe --iters 2250 > experiments/inpaint_lr/log.probe 2>&1 &
run rows-probe-decay0.2 --iters 1875 --lr-decay 0.2 > experiments/inpaint_lr/log.probe-decay 2>&1 &
wait
