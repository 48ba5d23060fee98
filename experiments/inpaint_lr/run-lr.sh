# Tune half, constant steps 0.005 and 0.02 to 2250 iterations (one worker each, resumable; experiments/inpaint_lr.py).
cd "$(dirname "$0")/../.."
TUNE=house,baboon512,bird,butterfly,coastguard,comic,f16
for lr in 0.005 0.02; do
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid \
        --tasks inpaint:bern --variants plain --threads 1 --iters 2250 --images $TUNE --lr $lr \
        --out experiments/inpaint_lr/rows-lr$lr.jsonl.gz > experiments/inpaint_lr/log.rest$lr 2>&1 &
done
wait
