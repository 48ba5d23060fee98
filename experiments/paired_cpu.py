import json, sys, statistics as st
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
by = {}
for r in rows:
    by.setdefault(r["prior_name"], {})[(r["image"], r["size"], r["sigma_estimated"] and r["key"].split("|")[3], r["seed"])] = r
base = by["default"]
for name, d in by.items():
    if name == "default": continue
    keys = [k for k in d if k in base]
    cpu = sum(d[k]["cpu_seconds"] for k in keys) / sum(base[k]["cpu_seconds"] for k in keys)
    it = sum(d[k]["iterations"] for k in keys) / sum(base[k]["iterations"] for k in keys)
    diffs = [d[k]["psnr_stopped"] - base[k]["psnr_stopped"] for k in keys]
    print(f"{name}: n={len(keys)} mean {st.mean(diffs):+.3f} sd {st.stdev(diffs):.3f} se {st.stdev(diffs)/len(diffs)**.5:.3f} median {st.median(diffs):+.3f} better {sum(x>0 for x in diffs)} CPU {cpu:.3f}x iters {it:.3f}x CPU/iter {cpu/it:.3f}x")
