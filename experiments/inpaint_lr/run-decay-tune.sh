# Tune half, step decayed linearly to 0 over the last 20% / 50% of the 1875-iteration cap (es_collect --lr-decay).
cd "$(dirname "$0")/../.."
TUNE=house,baboon512,bird,butterfly,coastguard,comic,f16
for d in 0.2 0.5; do
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid \
        --tasks inpaint:bern --variants plain --threads 1 --iters 1875 --images $TUNE --lr 0.01 --lr-decay $d \
        --out experiments/inpaint_lr/rows-lr0.01-decay$d.jsonl.gz
done > experiments/inpaint_lr/log.decay 2>&1
