#!/usr/bin/env bash
# OES's claim at reduced scale (issue 14, item 6; experiments/RESULTS-oes-protocol.md): dense DIP peaks and
# decays over a long run, an OES sparse net peaks higher and barely decays. 64x64 centre crops of house and
# baboon, sigma 25, 20,000 iterations under --config oes (no jitter, no EMA, no early stop, Adam 0.01) on a
# 4-level OES net; the OES masks are learnt blind on the noisy crop in 3,000 steps (OES: 60,000).
# Run from the repository root: nohup nice -n 10 bash experiments/oes_protocol/run.sh OUT > OUT.log 2>&1 &
# Every restore appends one JSON line per iteration to OUT/NAME.jsonl (--log); report with
# python experiments/oes_protocol/report.py OUT.
set -euo pipefail
out=${1:-/tmp/oes-protocol}
iters=${ITERS:-20000}
mask_iters=${MASK_ITERS:-3000}
mkdir -p "$out"
lip() { PYTHONPATH=$PWD python -m lipcli "$@"; }
# The OES net (5x5 down convs, average pooling at the conv, nearest upsampling, no skips, every parameter
# masked) with its first four levels at half width: 272,115 parameters, a 64x64 input needs no padding.
cat > "$out/oes-small.yaml" <<'YAML'
preset: oes
net: {preset: oes, down: [8, 16, 32, 64], up: [8, 16, 32, 64], skip: [0, 0, 0, 0]}
YAML
cfg=(--config "$out/oes-small.yaml" --simulate --sigma 25 --seed 0 --device cpu --threads 1)
for img in house baboon; do
  python - "$img" "$out" <<'PY'
import sys
from PIL import Image
name, out = sys.argv[1], sys.argv[2]
im = Image.open(f"/work/shared/data/images/{name}.png").convert("RGB")
left, top = (im.width - 64) // 2, (im.height - 64) // 2
im.crop((left, top, left + 64, top + 64)).save(f"{out}/{name}.png")
PY
done

fit() {  # NAME IMAGE [restore options]: a 20,000-iteration curve, one JSON line per iteration
  local name=$1 img=$2; shift 2
  lip restore "$out/$img.png" "${cfg[@]}" --iters "$iters" --log "$out/$name.jsonl" \
    -o "$out/$name.png" --json "$@" > "$out/$name.json"
}

stage=${STAGE:-1}  # STAGE=2 or 3 starts there (each stage was added after the one before had run)
if [ "$stage" -le 1 ]; then
# Masks, blind: OES learnt on the noisy crop (3,000 steps), and as a control a random mask with the OES
# mask's count in every parameter tensor (a plain random 95% of every parameter zeroes 95% of the BN gammas,
# which leaves a nearly constant net).
lip prune "$out/house.png" "${cfg[@]}" --method oes --iters "$mask_iters" -o "$out/house_oes.safetensors" --json \
  > "$out/prune_house.json" &
lip prune "$out/baboon.png" "${cfg[@]}" --method oes --iters "$mask_iters" -o "$out/baboon_oes.safetensors" --json \
  > "$out/prune_baboon.json" &
wait
lip prune "$out/house.png" "${cfg[@]}" --method random-layerwise --like "$out/house_oes.safetensors" \
  -o "$out/house_random.safetensors" --json > "$out/prune_house_random.json"

# Two lanes, one per core.
( fit house_dense house; fit baboon_dense baboon; fit house_random house --mask "$out/house_random.safetensors" ) &
( fit house_oes house --mask "$out/house_oes.safetensors"; fit baboon_oes baboon --mask "$out/baboon_oes.safetensors"
  fit house_dense_lr0.001 house --lr 0.001 ) &
wait
fi

if [ "$stage" -le 2 ]; then
# Stage 2. The masks over every parameter above keep about 5% of the BN gammas, so nearly every channel is
# constant (its gamma is zero) and the compacted net has a few dozen parameters. The same OES learning over
# the conv weights only (biases and BN dense): the "OES-style" sparse net of the report.
lip prune "$out/house.png" "${cfg[@]}" --method oes --scope conv --iters "$mask_iters" \
  -o "$out/house_oesconv.safetensors" --json > "$out/prune_house_oesconv.json" &
lip prune "$out/baboon.png" "${cfg[@]}" --method oes --scope conv --iters "$mask_iters" \
  -o "$out/baboon_oesconv.safetensors" --json > "$out/prune_baboon_oesconv.json" &
wait
lip prune "$out/house.png" "${cfg[@]}" --method random-layerwise --scope conv --like "$out/house_oesconv.safetensors" \
  -o "$out/house_randomconv.safetensors" --json > "$out/prune_house_randomconv.json"
( fit house_oesconv house --mask "$out/house_oesconv.safetensors"
  fit house_randomconv house --mask "$out/house_randomconv.safetensors" ) &
( fit baboon_oesconv baboon --mask "$out/baboon_oesconv.safetensors" ) &
wait
fi

# Stage 3. At 95% the conv-scope net still has ~1.2 live parameters per value of a 64x64 RGB crop; OES's 5%
# masks of its 3M-parameter net have 0.19 per value of a 512x512 image. 99% (0.3 per value) is the analogue.
lip prune "$out/house.png" "${cfg[@]}" --method oes --scope conv --target-sparsity 0.99 --iters "$mask_iters" \
  -o "$out/house_oesconv99.safetensors" --json > "$out/prune_house_oesconv99.json"
fit house_oesconv99 house --mask "$out/house_oesconv99.safetensors"
echo "all done"
