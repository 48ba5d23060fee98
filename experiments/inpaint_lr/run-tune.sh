# Tune half of the inpainting step-size study (experiments/inpaint_lr.py): two workers, one thread each.
# Each call is resumable: es_collect skips crops already in its rows file.
cd "$(dirname "$0")/../.."
TUNE=house,baboon512,bird,butterfly,coastguard,comic,f16
run() {  # lr images
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid \
        --tasks inpaint:bern --variants plain --threads 1 --iters 2250 --images "$2" --lr "$1" \
        --out experiments/inpaint_lr/rows-lr$1.jsonl.gz
}
(run 0.01 $TUNE; run 0.02 baboon512,bird,butterfly) > experiments/inpaint_lr/log.a 2>&1 &
(run 0.005 $TUNE; run 0.02 coastguard,comic,f16) > experiments/inpaint_lr/log.b 2>&1 &
wait
