#!/usr/bin/env python3
"""Geometric means of a DLMC sweep's speedups over oneDNN, from `sparsebench kernels --format json`.

For each file and thread count: the kernel the dispatcher picks (records with "dispatched": true),
each peer library, how many dispatched cells were noisy (cv above the threshold), and the ratio of
ours to the fastest peer per matrix (geometric mean and minimum).

    scripts/dlmc-summary.py docs/results/cpu/dlmc_*.json.gz
"""
import collections
import gzip
import json
import math
import sys


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(paths):
    if not paths:
        sys.exit("usage: dlmc-summary.py RESULTS.json[.gz] ...")
    for path in paths:
        records = load(path)
        for threads in sorted({r["threads"] for r in records}):
            speedups = collections.defaultdict(list)
            by_matrix = collections.defaultdict(lambda: {"ours": None, "peers": []})
            noisy = total = 0
            for r in records:
                if r["threads"] != threads or r["status"] != "ok" or r["speedup"] <= 0:
                    continue
                if r.get("dispatched"):
                    speedups["ours (dispatched)"].append(r["speedup"])
                    by_matrix[r["matrix"]]["ours"] = r["speedup"]
                    total += 1
                    noisy += bool(r["noisy"])
                elif r["role"] == "peer":
                    speedups[r["impl"]].append(r["speedup"])
                    by_matrix[r["matrix"]]["peers"].append(r["speedup"])
            ratios = [m["ours"] / max(m["peers"]) for m in by_matrix.values() if m["ours"] and m["peers"]]
            cache = records[0].get("cache", "?") if records else "?"
            print(f"{path}: {threads} thread(s), cache {cache}, {total} matrices, {noisy} noisy")
            for name, vals in speedups.items():
                print(f"  {name:<22} geomean speedup over oneDNN {geomean(vals):6.2f}x")
            if ratios:
                print(f"  ours / fastest peer: geomean {geomean(ratios):.2f}x, min {min(ratios):.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
