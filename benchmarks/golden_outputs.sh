#!/usr/bin/env bash
# Refactoring check: run a fixed set of tiny, seeded lip commands (1 thread, CPU, pinned creation time)
# and print one SHA-256 per output file, and the scores of every JSON result with timings removed.
# Run it before and after a restructuring and diff the two listings: they must be identical.
#   bash benchmarks/golden_outputs.sh OUT_DIR > listing.txt
set -euo pipefail
out=${1:?give an output folder}
root=$(cd "$(dirname "$0")/.." && pwd)
lip() { PYTHONPATH="$root" python -m lipcli "$@"; }  # this checkout, not an installed lip
mkdir "$out"; cd "$out"  # a new folder: transfer would resume from old rows
export SOURCE_DATE_EPOCH=1700000000
run=(--threads 1 --device cpu --seed 3)
strip() { python -c 'import json,sys
for line in sys.stdin:
    r = json.loads(line)
    for k in ("seconds","output","created","mask","seconds_per_iter","threads","generator"): r.pop(k, None)
    print(json.dumps(r, sort_keys=True))'; }
lip restore sample:house --simulate --iters 12 "${run[@]}" -o r_denoise.png --json | strip
lip restore sample:house --simulate --iters 12 --precision fp32 "${run[@]}" -o r_fp32.png --json | strip
lip restore sample:house --simulate --task inpaint --iters 12 "${run[@]}" -o r_inpaint.png --json | strip
lip restore sample:house --simulate --task sr --scale 4 --iters 12 "${run[@]}" -o r_sr.png --json | strip
lip restore sample:house --simulate --task mri --iters 12 "${run[@]}" -o r_mri.png --json | strip
lip restore sample:house-noisy --prior deep-decoder --dd-k 32 --iters 12 "${run[@]}" -o r_dd.png --json | strip
lip prune sample:house-noisy --rounds 2 --iters 10 --precision fp32 "${run[@]}" -o p_imp.safetensors >/dev/null
lip prune sample:house-noisy --method snip --rounds 2 --iters 10 --precision fp32 "${run[@]}" -o p_snip.safetensors >/dev/null
lip prune sample:house-noisy --method oes --iters 10 --precision fp32 "${run[@]}" -o p_oes.safetensors >/dev/null
lip prune sample:house-noisy --method random-layerwise --like p_imp.safetensors --iters 10 "${run[@]}" -o p_rand.safetensors >/dev/null
lip restore sample:house --simulate --mask p_imp.safetensors --round 2 --iters 12 "${run[@]}" -o r_mask.png --json | strip
lip restore sample:house --simulate --mask p_imp.safetensors --compact --iters 12 "${run[@]}" -o r_compact.png --json | strip
lip transfer --mask p_imp.safetensors sample:house --tasks denoise,sr4 --rounds 1,2 --baselines dense,random \
    --iters 8 --precision fp32 "${run[@]}" -o grid --json | strip
lip cs mnist:3 --simulate -m 100 --iters 30 --restarts 1 "${run[@]}" -o cs.png --json | strip
cp "$root/lipcli/data/generator-mnist.safetensors" gen.safetensors  # the artifact records this path
lip prune --prior gan --generator gen.safetensors --rounds 1 --epochs 1 --ratio 0.02 --threads 1 --seed 3 -o p_gan.safetensors >/dev/null
lip cs mnist:3 --simulate -m 100 --iters 30 --restarts 1 --mask p_gan.safetensors --round 1 "${run[@]}" -o cs_mask.png --json | strip
rm gen.safetensors
for f in *.png *.safetensors; do sha256sum "$f"; done
