#!/usr/bin/env bash
# Classification transfer at CPU scale (LIP Figs. 6 and 7; experiments/RESULTS-classify.md): the narrow DIP
# hourglass (dip-w16) as an MNIST classifier, dense, under a blind denoising LIP found on a noisy 64x64 House
# crop, under a random mask of the same size, and the classification IMP ticket; then both tickets back on
# sigma-25 denoising of 64x64 crops of House and F16. Every command's JSON lines are tagged and appended to
# OUT/results.jsonl (tagged_runs.sh: a re-run skips the tags already there); per-layer sparsity tables go to
# OUT/layers-r*.csv; `python experiments/classify_report.py OUT` tabulates it all.
#
#   nohup nice -n 10 bash experiments/classify_transfer.sh OUT [IMAGES_DIR] &
#   LIP="python -m lipcli" ... to run a source tree
set -euo pipefail
out=${1:?usage: classify_transfer.sh OUT [IMAGES_DIR]}
images=${2:-../shared/data/images}
source "$(dirname "$0")/tagged_runs.sh"
for name in house f16; do  # 64x64 centre crops (as masks/house64-imp-fast.safetensors was searched on)
  [ -f "$out/${name}-64.png" ] || python -c "from PIL import Image; im = Image.open('$images/$name.png').convert('RGB'); \
w, h = im.size; im.crop((w // 2 - 32, h // 2 - 32, w // 2 + 32, h // 2 + 32)).save('$out/${name}-64.png')"
done
run=(--device cpu --threads 1 --json)
train=(--epochs 1 --batch 32 --train 4500 --test 500)
lip_mask=$out/lip_w16.safetensors
ticket=$out/cls_w16.safetensors

# 1. the denoising LIP: blind IMP on the noisy House crop, the published code's dense input convs, fast schedule
run lip-prune prune "$out/house-64.png" --simulate --sigma 25 --net dip-w16 --keep-input-dense --rounds 4 \
  --rate 0.36 --iters 1200 -o "$lip_mask" --seed 0 "${run[@]}"
# 2. the classification ticket: IMP on the classification loss, the same ladder. Its round k session is the
#    ticket's seed-0 run (round 0: the dense classifier)
run cls-imp classify --net dip-w16 --prune-rounds 4 --rate 0.36 -o "$ticket" "${train[@]}" --seed 0 "${run[@]}"
# 3. the denoising LIP, a random mask of its size, and (seeds 1, 2) the ticket and the dense net as classifiers,
#    all from the same theta0 (the seed-0 draw); the seed sets the batch order and the fresh input convs and head
for seed in 0 1 2; do
  s=$([ "$seed" = 0 ] && echo "" || echo "-s$seed")
  for k in 2 4; do
    run "lip-r$k$s" classify --mask "$lip_mask" --round "$k" "${train[@]}" --seed "$seed" "${run[@]}"
    run "random-r$k$s" classify --mask "$lip_mask" --round "$k" --random "${train[@]}" --seed "$seed" "${run[@]}"
    [ "$seed" = 0 ] || run "cls-r$k$s" classify --mask "$ticket" --round "$k" "${train[@]}" --seed "$seed" "${run[@]}"
  done
  if [ "$seed" = 0 ]; then  # the same run as IMP session 0, from the command line's side
    run dense classify --net dip-w16 "${train[@]}" --seed 0 "${run[@]}"
  else
    run "dense$s" classify --mask "$ticket" --round 0 "${train[@]}" --seed "$seed" "${run[@]}"
  fi
done
# 4. back on denoising: both tickets, the dense net and a random mask (sigma 25, auto-stopped, oracle reported)
run transfer-lip transfer --mask "$lip_mask" "$out/house-64.png" "$out/f16-64.png" --tasks denoise \
  --rounds 2,4 --seeds 1 --baselines dense,random --out "$out/transfer-lip" --seed 0 "${run[@]}"
run transfer-cls transfer --mask "$ticket" "$out/house-64.png" "$out/f16-64.png" --tasks denoise \
  --rounds 2,4 --seeds 1 --baselines none --out "$out/transfer-cls" --seed 0 "${run[@]}"
# 5. layer-wise sparsity of the two tickets at equal sparsity (A = LIP, B = classification ticket)
for k in 2 4; do
  [ -f "$out/layers-r$k.csv" ] || $lip inspect "$lip_mask" "$ticket" --round "$k" --round-b "$k" \
    --csv "$out/layers-r$k.csv" 2>>"$out/log.txt"
done
