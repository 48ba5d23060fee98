#!/bin/sh
# Residual whiteness as a blind stop signal (issue 17, twenty-third session): trajectories of the default prior at
# 128x128 recorded to 3000 iterations with es_collect.py's white_* signals. Two workers (one thread each): the 15
# sigma-15 tune crops (t1, t2), then a fresh seed (3) of the 14 report crops (r1, r2), read only once a rule was
# written down from the tune rows; then seed 0 of the report crops (c1, c2): a check of the shipped gate, not a choice.
# Twenty-fourth session, the gate at sigma 50 (horizon 2000, as run_jitter.sh): the 15 tune crops at seed 0 (h1, h2),
# then a fresh seed (4) of the 14 report crops (q1, q2), read only once a level was written down from the tune rows;
# then the same report crops at sigma 60, seed 4 (v1, v2): a check of the band the sigma-50 level ships in, not a choice;
# then four report crops at 256x256, sigma 15, seed 3 (w1, w2): a check of the sigma-15 gate off the size it was chosen at;
# then sigma 75 as sigma 50: the 15 tune crops at seed 0 (k1, k2), then seed 4 of the 14 report crops (p1, p2).
cd /work/main
S=15; I=3000
Z=128
case "$1" in h*|q*) S=50; I=2000 ;; v*) S=60; I=2000 ;; k*|p*) S=75; I=2000 ;; w*) Z=256 ;; esac
C="env PYTHONPATH=$PWD:$PWD/experiments nice -n 5 python experiments/es_collect.py --grid --variants plain --mask dip-channel-house --threads 1 --sizes $Z --iters $I --tasks denoise:$S"
case "$1" in
  t1) $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02 \
        --out experiments/es_dev/rows-white-s15-tune1.jsonl.gz ;;
  t2) $C --images monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
        --out experiments/es_dev/rows-white-s15-tune2.jsonl.gz ;;
  r1) $C --seed 3 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
        --out experiments/es_dev/rows-white-s15-seed3-report1.jsonl.gz ;;
  r2) $C --seed 3 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
        --out experiments/es_dev/rows-white-s15-seed3-report2.jsonl.gz ;;
  c1) $C --seed 0 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
        --out experiments/es_dev/rows-white-s15-seed0-report1.jsonl.gz ;;
  c2) $C --seed 0 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
        --out experiments/es_dev/rows-white-s15-seed0-report2.jsonl.gz ;;
  h1) $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02 \
        --out experiments/es_dev/rows-white-s50-tune1.jsonl.gz ;;
  h2) $C --images monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
        --out experiments/es_dev/rows-white-s50-tune2.jsonl.gz ;;
  q1) $C --seed 4 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
        --out experiments/es_dev/rows-white-s50-seed4-report1.jsonl.gz ;;
  q2) $C --seed 4 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
        --out experiments/es_dev/rows-white-s50-seed4-report2.jsonl.gz ;;
  v1) $C --seed 4 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
        --out experiments/es_dev/rows-white-s60-seed4-report1.jsonl.gz ;;
  v2) $C --seed 4 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
        --out experiments/es_dev/rows-white-s60-seed4-report2.jsonl.gz ;;
  k1) $C --images house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02 \
        --out experiments/es_dev/rows-white-s75-tune1.jsonl.gz ;;
  k2) $C --images monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256 \
        --out experiments/es_dev/rows-white-s75-tune2.jsonl.gz ;;
  p1) $C --seed 4 --images astronaut,baby,barbara,bridge,face,flowers,foreman \
        --out experiments/es_dev/rows-white-s75-seed4-report1.jsonl.gz ;;
  p2) $C --seed 4 --images couple-gray512,hill-gray512,lena512,library,man,vase,zebra \
        --out experiments/es_dev/rows-white-s75-seed4-report2.jsonl.gz ;;
  w1) $C --seed 3 --images astronaut,face --out experiments/es_dev/rows-white-s15-256-seed3-report1.jsonl.gz ;;
  w2) $C --seed 3 --images baby,man --out experiments/es_dev/rows-white-s15-256-seed3-report2.jsonl.gz ;;
esac
