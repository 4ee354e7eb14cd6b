#!/usr/bin/env python3
"""The models and the trace that scheduler_sim replays for the README.

  tools/make_sim_trace.py benchmarks/scheduler_sim

Writes OUT/models.json and OUT/trace.jsonl, the same every time (a fixed seed). Seven models of
3 to 16 GB, 59 GB in all, for two GPUs of 24000 MiB: they cannot all be loaded at once. The trace
has four phases:
  0-30 s   a steady mixed stream, 25 requests/s, popularity skewed towards a few models,
           mostly normal, low and batch, a few high and critical;
  30-45 s  bursts: 200 batch requests for the largest model in one second, 150 normal ones for
           embed-large, 150 low ones for translate, and critical requests on the side, 5/s;
  45-70 s  a deadline-heavy phase: 20 requests/s, 70% with a deadline of 1-4 s, 40% high or
           critical;
  70-80 s  a quiet tail, 10 requests/s.
"""
import json
import os
import random
import sys

MODELS = [
    # name, bytes, load_ms, us_per_token
    ("embed-small", 3_000_000_000, 400, 0.5),
    ("classify", 5_000_000_000, 700, 0.8),
    ("rerank", 6_000_000_000, 900, 1.0),
    ("embed-large", 8_000_000_000, 1200, 1.5),
    ("translate", 10_000_000_000, 1500, 2.5),
    ("summarize-base", 11_000_000_000, 1600, 3.0),
    ("summarize-large", 16_000_000_000, 2500, 5.0),
]
# Popularity of the steady phases: a few models take most requests.
POPULARITY = [30, 20, 15, 12, 10, 8, 5]


def request(rng, t_ms, model, priority, deadline_ms=None):
    r = {"t_ms": round(t_ms, 1), "model": model, "priority": priority,
         "tokens": rng.randint(64, 1024)}
    if deadline_ms is not None:
        r["deadline_ms"] = deadline_ms
    return r


def stream(rng, start_ms, end_ms, per_second, classes, deadline_share=0.0):
    names = [m[0] for m in MODELS]
    out, t = [], start_ms
    while True:
        t += rng.expovariate(per_second) * 1000
        if t >= end_ms:
            return out
        priority = rng.choices(list(classes), weights=list(classes.values()))[0]
        deadline = rng.randint(1000, 4000) if rng.random() < deadline_share else None
        out.append(request(rng, t, rng.choices(names, weights=POPULARITY)[0], priority, deadline))


def burst(rng, at_ms, spread_ms, count, model, priority):
    return [request(rng, at_ms + rng.random() * spread_ms, model, priority) for _ in range(count)]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/scheduler_sim"
    rng = random.Random(13)
    trace = []
    trace += stream(rng, 0, 30_000, 25,
                    {"critical": 5, "high": 10, "normal": 50, "low": 20, "batch": 15})
    trace += burst(rng, 30_000, 1000, 200, "summarize-large", "batch")
    trace += burst(rng, 35_000, 500, 150, "embed-large", "normal")
    trace += burst(rng, 40_000, 500, 150, "translate", "low")
    side = stream(rng, 30_000, 45_000, 5, {"critical": 1})
    for r in side:
        r["model"] = rng.choice(["embed-small", "rerank"])
    trace += side
    trace += stream(rng, 45_000, 70_000, 20,
                    {"critical": 15, "high": 25, "normal": 40, "low": 10, "batch": 10},
                    deadline_share=0.7)
    trace += stream(rng, 70_000, 80_000, 10, {"normal": 60, "low": 20, "batch": 20})
    trace.sort(key=lambda r: r["t_ms"])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "models.json"), "w") as f:
        json.dump([{"name": n, "bytes": b, "load_ms": l, "us_per_token": u}
                   for n, b, l, u in MODELS], f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "trace.jsonl"), "w") as f:
        for r in trace:
            f.write(json.dumps(r) + "\n")
    print(json.dumps({"models": len(MODELS), "requests": len(trace), "out": out_dir}))


if __name__ == "__main__":
    main()
