#!/usr/bin/env bash
# Shell pipelines with lip. Run from the repository root after `pip install .`.
set -euo pipefail
mkdir -p examples/noisy examples/restored examples/restored/masked

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

# 2. Restore the whole folder in one command: several images at once, the cores divided between them
#    (--jobs auto; on a 2-core CPU two at a time, one thread each: 1.2-1.4x (dense net) to 2x (narrow net)
#    the images per hour of one after the other, far more on a busy machine). One JSON line per image on
#    stdout, in input order.
lip restore examples/noisy/*.png -o examples/restored/ --json > examples/results.jsonl

# 2b. Several lip commands at once (a shell loop with &, GNU parallel, one node of a cluster) share the cores
#     between their fits while they run, as long as their --threads is left open (two that each kept every
#     core of a 2-core CPU ran 22-35x slower each; sharing, 1.4-1.7x: benchmarks/RESULTS-share.md), e.g.
#       parallel -j 2 lip restore {} -o examples/restored/{/} ::: examples/noisy/*.png
#     With a fixed --threads give each its share (jobs x threads = cores); other work than lip is not seen
#     (lip warns when it starts on a busy machine; --threads auto takes only the cores it leaves free).
#     Across machines or SLURM array tasks, --shard i/n restores every n-th input: docs/batch.md.

# 3. Summarise the JSON lines: iterations run, where auto-stop landed, threads, time; the PSNR of each written
#    image against the clean sample is computed here, afterwards (lip never needs the clean image).
python - <<'PY'
import json
import numpy as np
from PIL import Image
from lipcli.images import resolve
clean = np.asarray(Image.open(resolve("sample:house")), dtype=np.float64)
rows = [json.loads(l) for l in open("examples/results.jsonl")]
w = max([len("input")] + [len(r["input"]) for r in rows]) + 2  # the column fits the longest input name
print(f"{'input':<{w}}{'iters':>6}{'stop':>6}{'threads':>8}{'s':>7}{'PSNR':>8}")
for r in rows:
    out = np.asarray(Image.open(r["output"]), dtype=np.float64)
    psnr = 10 * np.log10(255 ** 2 / np.mean((out - clean) ** 2))
    print(f"{r['input']:<{w}}{r['iterations']:>6}{r['stopped_at']:>6}{r['threads']:>8}{r['seconds']:>7.1f}{psnr:>8.2f}")
PY

# 4. Find a lottery ticket once on one image, then reuse it on the others.
lip prune examples/noisy/house_s25.png --rounds 4 --iters 300 -o examples/house_imp.safetensors
lip inspect examples/house_imp.safetensors
lip restore examples/noisy/*.png --mask examples/house_imp.safetensors -o examples/restored/masked/ --json \
  | python -c "import json,sys; [print(r['input'], r['round'], f\"{100*r['sparsity']:.1f}%\", r['stopped_at']) for r in map(json.loads, sys.stdin)]"
