#!/usr/bin/env bash
# Shell pipelines with lip. Run from the repository root after `pip install .`.
set -euo pipefail
mkdir -p examples/noisy examples/restored

# 1. Make a folder of noisy inputs from the bundled sample (your own photos go here instead).
for s in 15 25 50; do
  python - "$s" <<'PY'
import sys, numpy as np
from PIL import Image
from lipcli.images import resolve
s = float(sys.argv[1])
x = np.asarray(Image.open(resolve("sample:house")), dtype=np.float64) / 255
y = np.clip(x + np.random.default_rng(int(s)).normal(0, s / 255, x.shape), 0, 1)
Image.fromarray(np.round(y * 255).astype(np.uint8)).save(f"examples/noisy/house_s{int(s)}.png")
PY
done

# 2. Batch restore of a folder in a shell loop; one JSON line per image on stdout.
for f in examples/noisy/*.png; do
  lip restore "$f" --clean sample:house -o "examples/restored/$(basename "$f")" --json
done > examples/results.jsonl

# 2b. Several images at once: give each job its share of the cores (jobs x threads = cores). Two jobs
#     that each take every core of a 2-core CPU ran 4.6x slower each; with --threads 1 each, 1.4x more
#     images per hour than one after the other (dense net). With GNU parallel on a 2-core machine:
#       parallel -j 2 lip restore {} --threads 1 -o examples/restored/{/} ::: examples/noisy/*.png
#     (--threads auto takes only the cores other work leaves free; lip warns when it starts on a busy machine.)

# 3. Summarise the JSON lines: iterations run, where auto-stop landed, PSNR final vs auto-stopped.
python - <<'PY'
import json
rows = [json.loads(l) for l in open("examples/results.jsonl")]
print(f"{'input':<18}{'iters':>6}{'stop':>6}{'final':>8}{'stopped':>9}{'oracle':>8}{'s':>7}")
for r in rows:
    print(f"{r['input']:<18}{r['iterations']:>6}{r['stopped_at']:>6}{r['psnr_final']:>8.2f}"
          f"{r['psnr_stopped']:>9.2f}{r['oracle_best_psnr']:>8.2f}{r['seconds']:>7.1f}")
PY

# 4. Find a lottery ticket once on one image, then reuse it on the others.
lip prune examples/noisy/house_s25.png --rounds 4 --iters 300 -o examples/house_imp.safetensors
lip inspect examples/house_imp.safetensors
for f in examples/noisy/*.png; do
  lip restore "$f" --mask examples/house_imp.safetensors -o "examples/restored/masked_$(basename "$f")" --json
done | python -c "import json,sys; [print(r['input'], r['round'], f\"{100*r['sparsity']:.1f}%\", r['stopped_at']) for r in map(json.loads, sys.stdin)]"
