#!/bin/sh
# Does the default prior (the shipped channel ticket) need a higher iteration cap at 256x256? Its restores there
# hit the fast preset's 1800 cap still improving on 3 of 4 report crops (experiments/RESULTS-sparse.md). Full
# trajectories to a 3000-iteration horizon (no stop), sigma 25, seed 0, centre crops, one thread; stop_gate.py
# replays the shipped rule at caps 1800-3000. Tune crops first (the choice), then report. Resumable.
W="nice -n 10 env PYTHONPATH=$PWD:$PWD/experiments python experiments/es_collect.py --grid --variants plain \
   --tasks denoise:25 --iters 3000 --threads 1 --sizes 256 --mask dip-channel-house"
$W --images house,baboon512,bird,butterfly --out experiments/es_dev/rows-ticket256-tune.jsonl.gz
$W --images astronaut,baby,barbara,bridge --out experiments/es_dev/rows-ticket256-report.jsonl.gz
