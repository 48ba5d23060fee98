# experiments/ema_window.py on es_dev's tune half (HALF=tune) or report half (HALF=report): two workers, one thread each, resumable.
cd "$(dirname "$0")/../.."
HALF=${HALF:-tune}
IMAGES=$(PYTHONPATH=experiments python -c "import es_collect as e; print(','.join(getattr(e, '$HALF'.upper())))")
A=$(echo $IMAGES | cut -d, -f1-8); B=$(echo $IMAGES | cut -d, -f9-)
for part in "$A" "$B"; do
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD:$PWD/experiments python experiments/ema_window.py --images "$part" \
        --out experiments/ema_window/rows-s25.jsonl.gz >> experiments/ema_window/log.$HALF 2>&1 &
done
wait
