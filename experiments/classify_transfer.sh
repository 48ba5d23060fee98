#!/usr/bin/env bash
# Classification transfer at CPU scale (LIP Figs. 6 and 7; experiments/RESULTS-classify.md): the narrow DIP
# hourglass (dip-w16) as an MNIST classifier, dense, under a blind denoising LIP found on a noisy 64x64 House
# crop, under a random mask of the same size, and the classification IMP ticket; then both tickets back on
# sigma-25 denoising of 64x64 crops of House and F16. Every command's JSON lines are tagged and appended to
# OUT/results.jsonl (a re-run skips the tags already there); per-layer sparsity tables go to OUT/layers-*.csv.
#
#   nohup nice -n 10 bash experiments/classify_transfer.sh OUT [IMAGES_DIR] &
#   LIP="python -m lipcli" ... to run a source tree
set -euo pipefail
out=${1:?usage: classify_transfer.sh OUT [IMAGES_DIR]}
images=${2:-../shared/data/images}
lip=${LIP:-lip}
mkdir -p "$out"
touch "$out/results.jsonl"
for name in house f16; do  # 64x64 centre crops (as masks/house64-imp-fast.safetensors was searched on)
  [ -f "$out/${name}-64.png" ] || python -c "from PIL import Image; im = Image.open('$images/$name.png').convert('RGB'); \
w, h = im.size; im.crop((w // 2 - 32, h // 2 - 32, w // 2 + 32, h // 2 + 32)).save('$out/${name}-64.png')"
done
run=(--device cpu --threads 1 --seed 0 --json)
train=(--epochs 1 --batch 32 --train 4500 --test 500)

run() {  # run TAG ARGS...: one lip command, each of its JSON lines (or its error line) tagged and appended
  local tag=$1 result
  shift
  grep -q "\"tag\": \"$tag\"" "$out/results.jsonl" && return 0
  result=$($lip "$@" 2>>"$out/log.txt") || result=$(tail -n 1 "$out/log.txt" | python -c \
    "import json, sys; print(json.dumps({'failed': sys.stdin.read().strip()}))")
  echo "$result" | python -c "import json, sys
for line in sys.stdin:
    if line.strip():
        d = json.loads(line); d['tag'] = '$tag'; print(json.dumps(d, sort_keys=True))" >>"$out/results.jsonl"
}

# 1. the denoising LIP: blind IMP on the noisy House crop, the published code's dense input convs, fast schedule
run lip-prune prune "$out/house-64.png" --simulate --sigma 25 --net dip-w16 --keep-input-dense --rounds 4 \
  --rate 0.36 --iters 1200 -o "$out/lip_w16.safetensors" "${run[@]}"
# 2. the classification ticket: IMP on the classification loss, the same ladder (round 0 = the dense classifier)
run cls-imp classify --net dip-w16 --prune-rounds 4 --rate 0.36 -o "$out/cls_w16.safetensors" "${train[@]}" "${run[@]}"
# 3. the denoising LIP and a random mask of its size as classifiers (the LIP's theta0 = the seed-0 draw)
for k in 2 4; do
  run "lip-r$k" classify --mask "$out/lip_w16.safetensors" --round "$k" "${train[@]}" "${run[@]}"
  run "random-r$k" classify --mask "$out/lip_w16.safetensors" --round "$k" --random "${train[@]}" "${run[@]}"
done
run dense classify --net dip-w16 "${train[@]}" "${run[@]}"
# 4. back on denoising: both tickets, the dense net and a random mask (sigma 25, auto-stopped, oracle reported)
run transfer-lip transfer --mask "$out/lip_w16.safetensors" "$out/house-64.png" "$out/f16-64.png" --tasks denoise \
  --rounds 2,4 --seeds 1 --baselines dense,random --out "$out/transfer-lip" "${run[@]}"
run transfer-cls transfer --mask "$out/cls_w16.safetensors" "$out/house-64.png" "$out/f16-64.png" --tasks denoise \
  --rounds 2,4 --seeds 1 --baselines none --out "$out/transfer-cls" "${run[@]}"
# 5. layer-wise sparsity of the two tickets at equal sparsity (A = LIP, B = classification ticket)
for k in 2 4; do
  [ -f "$out/layers-r$k.csv" ] || $lip inspect "$out/lip_w16.safetensors" "$out/cls_w16.safetensors" --round "$k" \
    --round-b "$k" --csv "$out/layers-r$k.csv" 2>>"$out/log.txt"
done
