#!/usr/bin/env python3
"""GPU time per ATen op from a Kineto Chrome trace (generate_profile --trace, embed_profile --trace).

Usage: trace_ops.py TRACE.json[.gz] [--top 25]
Each kernel is charged to the CPU op that launched it (the op whose "External id" it carries);
kernels of a CUDA graph replay are charged to the graph. Prints milliseconds, kernels and op
name, most first, and the same per kernel name under the five costliest ops.
"""
import argparse
import collections
import gzip
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    opener = gzip.open if a.trace.endswith(".gz") else open
    with opener(a.trace, "rt") as f:
        events = json.load(f)["traceEvents"]
    ops = {}
    for e in events:
        if e.get("cat") == "cpu_op":
            ops[e.get("args", {}).get("External id")] = e["name"]
    runtime = {}
    for e in events:
        if e.get("cat") == "cuda_runtime":
            runtime[e.get("args", {}).get("correlation")] = e["name"]
    per_op = collections.defaultdict(lambda: [0.0, 0])
    per_op_kernel = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0]))
    total = 0.0
    for e in events:
        if e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        args = e.get("args", {})
        launch = runtime.get(args.get("correlation"), "")
        op = "cuda graph" if "Graph" in launch else ops.get(args.get("External id"), "(no op)")
        ms = e.get("dur", 0) / 1000.0
        total += ms
        per_op[op][0] += ms
        per_op[op][1] += 1
        k = per_op_kernel[op][e["name"][:80]]
        k[0] += ms
        k[1] += 1
    print(f"GPU time {total:.2f} ms")
    ranked = sorted(per_op.items(), key=lambda kv: -kv[1][0])
    for op, (ms, n) in ranked[: a.top]:
        print(f"{ms:9.2f} ms {n:7d} x  {op}")
    for op, _ in ranked[:5]:
        print(f"-- {op}")
        for name, (ms, n) in sorted(per_op_kernel[op].items(), key=lambda kv: -kv[1][0])[:6]:
            print(f"   {ms:9.2f} ms {n:7d} x  {name}")


if __name__ == "__main__":
    main()
