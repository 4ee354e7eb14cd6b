#!/usr/bin/env python3
"""transformers' generate() ids for a seq2seq folder (T5, BART), as the reference of
benchmarks/generate_parity.

Usage: reference_generate_ids.py MODEL_DIR CORPUS_TXT OUT_JSON [--dtype bfloat16] [--device cuda]
                                 [--docs 64] [--input-tokens 512] [--new-tokens 64]
Inputs: the first --docs documents of the corpus as seq2seq_inputs.py encodes them (the folder's
prefix and tokenizer), run 32 at a time. Cases: greedy, and 4 beams with no_repeat_ngram_size=3;
every other setting is the folder's (its generation_config.json, as generate() takes it).
Writes {"inputs", "eos_token_id", "cases": [{"name", "options", "sequences"}]} where sequences
are generate()'s rows (decoder start token first, padded).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seq2seq_inputs  # noqa: E402

CASES = [("greedy", dict(num_beams=1)), ("beam4_no_repeat3", dict(num_beams=4, no_repeat_ngram_size=3))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir"); ap.add_argument("corpus"); ap.add_argument("out")
    ap.add_argument("--dtype", default="bfloat16"); ap.add_argument("--device", default="cuda")
    ap.add_argument("--docs", type=int, default=64); ap.add_argument("--input-tokens", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    a = ap.parse_args()
    from transformers import AutoModelForSeq2SeqLM
    config = seq2seq_inputs.folder_config(a.model_dir)
    pad, eos = seq2seq_inputs.token_ids(config)
    docs = [line.rstrip("\n") for _, line in zip(range(a.docs), open(a.corpus, encoding="utf-8"))]
    inputs = seq2seq_inputs.make_encoder(a.model_dir, a.input_tokens)(docs)
    model = AutoModelForSeq2SeqLM.from_pretrained(a.model_dir).to(a.device, getattr(torch, a.dtype)).eval()
    cases = []
    for name, kwargs in CASES:
        kwargs = dict(kwargs, max_new_tokens=a.new_tokens)
        sequences = []
        for start in range(0, len(inputs), 32):
            ids, mask = seq2seq_inputs.pad_batch(inputs[start:start + 32], pad, a.device)
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kwargs)
            sequences += out.tolist()
        cases.append({"name": name, "options": kwargs, "sequences": sequences})
        print(json.dumps({"case": name, "texts": len(sequences)}), flush=True)
    with open(a.out, "w") as f:
        json.dump({"model": a.model_dir, "dtype": a.dtype, "eos_token_id": eos, "inputs": inputs,
                   "cases": cases}, f)


if __name__ == "__main__":
    main()
