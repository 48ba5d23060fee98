#!/bin/sh
# Residual whiteness as a blind stop signal (issue 17, twenty-third session): trajectories of the default prior at
# 128x128 recorded without stopping with es_collect.py's white_* signals. Two workers (one thread each) per step;
# report rows are read only once a rule was written down from the tune rows (experiments/RESULTS-stop-white.md).
# Sigma 15, 3000 iterations: the 15 tune crops (t1, t2), then a fresh seed (3) of the 14 report crops (r1, r2), then
# seed 0 of the report crops (c1, c2): a check of the shipped gate, not a choice.
# Twenty-fourth session, horizon 2000 as run_jitter.sh: sigma 50, the tune crops at seed 0 (h1, h2), then a fresh
# seed (4) of the report crops (q1, q2); sigma 60, seed 4 of the report crops (v1, v2): a check of the band the
# sigma-50 level ships in; sigma 75 as sigma 50 (k1, k2, p1, p2); and four report crops at 256x256, sigma 15,
# seed 3, 3000 iterations (w1, w2): a check of the sigma-15 gate off the size it was chosen at; then seed 5 of the
# report crops at sigma 50 and 75 (x1, x2): a check of the shipped levels on a second fresh seed, not a choice.
cd /work/main
T1=house,baboon512,bird,butterfly,coastguard,comic,f16,kodim02
T2=monarch,pepper,sf4,kate,cameraman-gray256,boat-gray512,montage-gray256
R1=astronaut,baby,barbara,bridge,face,flowers,foreman
R2=couple-gray512,hill-gray512,lena512,library,man,vase,zebra

run() {  # sigma, iterations, size, seed, images, rows file (under es_dev, without .jsonl.gz)
  env PYTHONPATH=$PWD:$PWD/experiments nice -n 5 python experiments/es_collect.py --grid --variants plain \
    --mask dip-channel-house --threads 1 --tasks denoise:$1 --iters $2 --sizes $3 --seed $4 --images $5 \
    --out experiments/es_dev/$6.jsonl.gz
}

# worker   sigma  iterations  size  seed  images  rows file (a worker's rows run in turn)
JOBS=$(awk -v w="$1" '$1 == w {print $2, $3, $4, $5, $6, $7}' <<TABLE
t1 15 3000 128 0 $T1 rows-white-s15-tune1
t2 15 3000 128 0 $T2 rows-white-s15-tune2
r1 15 3000 128 3 $R1 rows-white-s15-seed3-report1
r2 15 3000 128 3 $R2 rows-white-s15-seed3-report2
c1 15 3000 128 0 $R1 rows-white-s15-seed0-report1
c2 15 3000 128 0 $R2 rows-white-s15-seed0-report2
h1 50 2000 128 0 $T1 rows-white-s50-tune1
h2 50 2000 128 0 $T2 rows-white-s50-tune2
q1 50 2000 128 4 $R1 rows-white-s50-seed4-report1
q2 50 2000 128 4 $R2 rows-white-s50-seed4-report2
v1 60 2000 128 4 $R1 rows-white-s60-seed4-report1
v2 60 2000 128 4 $R2 rows-white-s60-seed4-report2
k1 75 2000 128 0 $T1 rows-white-s75-tune1
k2 75 2000 128 0 $T2 rows-white-s75-tune2
p1 75 2000 128 4 $R1 rows-white-s75-seed4-report1
p2 75 2000 128 4 $R2 rows-white-s75-seed4-report2
w1 15 3000 256 3 astronaut,face rows-white-s15-256-seed3-report1
w2 15 3000 256 3 baby,man rows-white-s15-256-seed3-report2
x1 50 2000 128 5 $R1 rows-white-s50-seed5-report1
x1 75 2000 128 5 $R1 rows-white-s75-seed5-report1
x2 50 2000 128 5 $R2 rows-white-s50-seed5-report2
x2 75 2000 128 5 $R2 rows-white-s75-seed5-report2
TABLE
)
[ -n "$JOBS" ] || { echo "usage: sh run_white.sh WORKER (a first column of the table above)" >&2; exit 2; }
echo "$JOBS" | while read -r sigma iters size seed images rows; do
  run "$sigma" "$iters" "$size" "$seed" "$images" "$rows" < /dev/null
done
