#!/usr/bin/env bash
# The paper's CS setting (Jalal et al. / LIP Section 5: m = 1000 Gaussian measurements, 20 of them (2%)
# corrupted to 10000, noise 0.01, 1500 Adam iterations): MOM vs LS, with the bundled MNIST generator
# and with CS-DIP on 64x64 RGB crops. One JSON line per run is appended to OUT/results.jsonl (a re-run
# skips the runs already there). The generator's test digits are mnist:0 .. mnist:9, the digits 0 .. 9.
#
#   nice -n 10 bash experiments/cs_paper_setting.sh OUT [IMAGES_DIR]
#   LIP="python -m lipcli" ... to run a source tree
#   DIGITS="0 2 4" ... a subset of the test digits; PRIORS=gen (or dip) ... one prior only
set -euo pipefail
out=${1:?usage: cs_paper_setting.sh OUT [IMAGES_DIR]}
images=${2:-../shared/data/images}
read -ra digits <<<"${DIGITS:-0 1 2 3 4 5 6 7 8 9}"
priors=${PRIORS:-gen dip}
source "$(dirname "$0")/tagged_runs.sh"
paper=(-m 1000 --outliers 20 --noise 0.01 --operator gaussian --iters 1500 --device cpu --threads 1 --json)

if [[ $priors == *gen* ]]; then
  for k in "${digits[@]}"; do
    for solver in mom ls; do
      run "gen-$solver-$k" cs "mnist:$k" --simulate "${paper[@]}" --solver "$solver" --restarts 2 --seed "$k" \
        -o "$out/gen-$solver-$k.png"
    done
  done
  for k in "${digits[@]}"; do  # the reference: the same measurements without outliers, least squares
    run "gen-clean-ls-$k" cs "mnist:$k" --simulate "${paper[@]}" --outliers 0 --solver ls --restarts 2 --seed "$k" \
      -o "$out/gen-clean-ls-$k.png"
  done
fi
if [[ $priors == *dip* ]]; then
  for name in house f16; do  # 64x64 RGB, Lanczos-resized from the 256x256 / 512x512 originals
    [ -f "$out/${name}64.png" ] || python -c "from PIL import Image; Image.open('$images/$name.png').convert('RGB')\
.resize((64, 64), Image.LANCZOS).save('$out/${name}64.png')"
  done
  for name in house f16; do
    for solver in mom ls; do
      run "dip-$solver-$name" cs "$out/${name}64.png" --simulate --prior dip "${paper[@]}" --solver "$solver" \
        -o "$out/dip-$solver-$name.png"
    done
  done
  for solver in mom ls; do  # the same without outliers: what MOM costs when nothing is corrupted
    run "dip-clean-$solver-house" cs "$out/house64.png" --simulate --prior dip "${paper[@]}" --outliers 0 \
      --solver "$solver" -o "$out/dip-clean-$solver-house.png"
  done
fi
