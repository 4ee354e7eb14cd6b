#!/usr/bin/env python3
"""transformers' generate() ids for a T5 folder, as the reference of benchmarks/generate_parity.

Usage: t5_reference_ids.py MODEL_DIR CORPUS_TXT OUT_JSON [--dtype bfloat16] [--device cuda]
                           [--docs 64] [--input-tokens 512] [--new-tokens 64]
Inputs: the first --docs documents of the corpus, prefixed with "summarize: ", tokenized with
sentencepiece (ids + </s>, cut at --input-tokens), run 32 at a time. Cases: greedy, and 4 beams
with no_repeat_ngram_size=3. Writes {"inputs", "eos_token_id", "cases": [{"name", "options",
"sequences"}]} where sequences are generate()'s rows (decoder start token first, padded).
"""
import argparse
import json
import os

import torch

CASES = [("greedy", dict(num_beams=1)), ("beam4_no_repeat3", dict(num_beams=4, no_repeat_ngram_size=3))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir"); ap.add_argument("corpus"); ap.add_argument("out")
    ap.add_argument("--dtype", default="bfloat16"); ap.add_argument("--device", default="cuda")
    ap.add_argument("--docs", type=int, default=64); ap.add_argument("--input-tokens", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    a = ap.parse_args()
    import sentencepiece as spm
    from transformers import AutoModelForSeq2SeqLM
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.model_dir, "spiece.model"))
    docs = [line.rstrip("\n") for _, line in zip(range(a.docs), open(a.corpus, encoding="utf-8"))]
    inputs = [sp.encode("summarize: " + d)[: a.input_tokens - 1] + [1] for d in docs]
    model = AutoModelForSeq2SeqLM.from_pretrained(a.model_dir).to(a.device, getattr(torch, a.dtype)).eval()
    cases = []
    for name, kwargs in CASES:
        kwargs = dict(kwargs, max_new_tokens=a.new_tokens)
        sequences = []
        for start in range(0, len(inputs), 32):
            rows = inputs[start:start + 32]
            width = max(map(len, rows))
            ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=a.device)
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=a.device)
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kwargs)
            sequences += out.tolist()
        cases.append({"name": name, "options": kwargs, "sequences": sequences})
        print(json.dumps({"case": name, "texts": len(sequences)}), flush=True)
    with open(a.out, "w") as f:
        json.dump({"model": a.model_dir, "dtype": a.dtype, "eos_token_id": 1, "inputs": inputs,
                   "cases": cases}, f)


if __name__ == "__main__":
    main()
