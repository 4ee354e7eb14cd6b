#!/usr/bin/env python3
"""How close modelpool's vectors come to sentence-transformers' float32 ones on a full-size model.

    compare_embeddings.py MODEL_DIR TEXTS.txt [--limit N] [--min-cosine C] VECTORS.npy...

TEXTS.txt holds one text per line (the first N are taken, as modelpool-embed was given them);
each VECTORS.npy is modelpool-embed's output for those texts. Prints one JSON line per file:
the lowest and the mean cosine against sentence-transformers in float32 on the GPU. Exit status
1 when a file's lowest cosine is under --min-cosine (0.999, what float16 is held to).
"""
import argparse
import json
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("texts")
    parser.add_argument("vectors", nargs="+")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--min-cosine", type=float, default=0.999)
    args = parser.parse_args()
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f][: args.limit]
    model = SentenceTransformer(args.model, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    reference = model.encode(texts, batch_size=64, convert_to_numpy=True).astype(np.float64)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    failed = False
    for path in args.vectors:
        ours = np.load(path).astype(np.float64)
        if ours.shape != reference.shape:
            print(json.dumps({"file": path, "error": f"shape {ours.shape}, expected {reference.shape}"}))
            failed = True
            continue
        ours /= np.linalg.norm(ours, axis=1, keepdims=True)
        cosine = (ours * reference).sum(axis=1)
        print(json.dumps({"file": path, "texts": len(texts), "min_cosine": round(float(cosine.min()), 9),
                          "mean_cosine": round(float(cosine.mean()), 9)}))
        failed |= bool(cosine.min() < args.min_cosine)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
