#!/bin/sh
# Inpainting's kernel decay on the text and hole masks at a second seed (the first: seed 0, RESULTS-decay-tasks.md,
# "Text and hole masks"): the same 6 cases, --seed 1 (another net initialisation, input code and jitter; the masks
# are the files'), decay 0.2 against none, one worker per arm, one thread each. From the repo root; resumable.
C="inpaint|kate|64,inpaint|library|64,inpaint|vase|64,scribble|pepper|64,scribble|lena512|64,scribble|astronaut|64"
arm() {
    nice -n 5 env PYTHONPATH="$PWD:$PWD/benchmarks" python experiments/data_consistency.py --cases "$C" --seed 1 \
        --weight-decay "$1" --out "experiments/dc/rows-$2-seed1.jsonl"
}
arm 0.2 decay &
arm 0 nodecay &
wait
