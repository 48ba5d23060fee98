#!/bin/sh
# The default ticket's sigma-50 trajectories again, now with the jitter `lip restore` fits it with (the entry's
# schedule at the blind estimate, ~0.045-0.05 at sigma 50; before: 1/30). Horizon 2000 (peaks came before 1000
# with 1/30; more jitter needs ~1.4x the iterations). One thread. Worker `report`: the 14 report crops, seed 0;
# worker `rest`: seed 1 of the first 6 report crops, then the 15 tune crops, seed 0. Workers `tune2` and `report2`:
# seed 2 of every crop, fresh runs for the window test written down in RESULTS-stop-jitter.md. Workers `tune75` and
# `report75`: seed 0 of every crop at sigma 75 (the jitter flat at 0.05 there), for the sigma-75 stop study; `tune60a`
# and `tune60b`: the tune crops at sigma 60 (whose estimates straddle the gate's switch at 52.5), in two parts.
# Workers `report60` and `report50s3`: fresh runs for the test of a gate switch at 48.5 (RESULTS-stop-jitter.md):
# the report crops at sigma 60, seed 0, and at sigma 50, seed 3. Workers `report75s1a` and `report75s1b`: the report
# crops at sigma 75, seed 1, in two parts: a second seed for the gate of 1.2 chosen there on seed 0.
cd "$(dirname "$0")/../.."
SIGMA=50
case "$1" in *75*) SIGMA=75 ;; *60*) SIGMA=60 ;; esac
C="env PYTHONPATH=$PWD:$PWD/experiments nice -n 5 python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes 128 --tasks denoise:$SIGMA --iters 2000"
R6=astronaut,baby,barbara,bridge,face,flowers
case "$1" in
  report) $C --images $R6,foreman,lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s50-jitter.jsonl.gz ;;
  rest) $C --seed 1 --images $R6 --out experiments/es_dev/rows-ticket-s50-jitter-seed1.jsonl.gz
        $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02,monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
            --out experiments/es_dev/rows-ticket-s50-jitter-tune.jsonl.gz ;;
  tune2) $C --seed 2 --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02,monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
            --out experiments/es_dev/rows-ticket-s50-jitter-seed2-tune.jsonl.gz ;;
  report2) $C --seed 2 --images $R6,foreman,lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s50-jitter-seed2-report.jsonl.gz ;;
  tune75) $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02,monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
            --out experiments/es_dev/rows-ticket-s75-tune.jsonl.gz ;;
  tune60a) $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02 \
            --out experiments/es_dev/rows-ticket-s60-tune-a.jsonl.gz ;;
  tune60b) $C --images monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
            --out experiments/es_dev/rows-ticket-s60-tune-b.jsonl.gz ;;
  report60) $C --images $R6,foreman,lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s60-report.jsonl.gz ;;
  report50s3) $C --seed 3 --images $R6,foreman,lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s50-jitter-seed3-report.jsonl.gz ;;
  report75s1a) $C --seed 1 --images $R6,foreman \
            --out experiments/es_dev/rows-ticket-s75-report-seed1-a.jsonl.gz ;;
  report75s1b) $C --seed 1 --images lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s75-report-seed1-b.jsonl.gz ;;
  report75) $C --images $R6,foreman,lena512,man,zebra,library,vase,hill-gray512,couple-gray512 \
            --out experiments/es_dev/rows-ticket-s75-report.jsonl.gz ;;
esac
