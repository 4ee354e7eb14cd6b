#!/usr/bin/env python3
"""Peer: transformers generate() for any seq2seq folder (T5, BART), fixed output length.

Usage: hf_generate_peer.py MODEL_DIR CORPUS_TXT [--dtype bfloat16] [--batch 32] [--new-tokens 64]
                           [--input-tokens 512]
As .device/bench/peers/hf_generate.py (which reads T5's spiece.model only), with the inputs of
seq2seq_inputs.py: the longest documents of the corpus with the folder's prefix and tokenizer.
min_new_tokens = max_new_tokens, so the time does not depend on the weights; every other setting
is the folder's. Prints the same JSON lines, which generate_bench reads.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seq2seq_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir"); ap.add_argument("corpus")
    ap.add_argument("--dtype", default="bfloat16"); ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64); ap.add_argument("--input-tokens", type=int, default=512)
    a = ap.parse_args()
    import transformers
    from transformers import AutoModelForSeq2SeqLM
    pad, _ = seq2seq_inputs.token_ids(seq2seq_inputs.folder_config(a.model_dir))
    encode = seq2seq_inputs.make_encoder(a.model_dir, a.input_tokens)
    model = AutoModelForSeq2SeqLM.from_pretrained(a.model_dir).to("cuda", getattr(torch, a.dtype)).eval()
    docs = sorted((line.rstrip("\n") for line in open(a.corpus, encoding="utf-8")), key=len, reverse=True)
    for bs, beams in ((1, 1), (a.batch, 1), (a.batch, 4)):
        ids, mask = seq2seq_inputs.pad_batch(encode(docs[:bs]), pad, "cuda")
        kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, num_beams=beams, do_sample=False)
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, **kw)
            torch.cuda.synchronize()
            t = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, **kw)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t
        print(json.dumps(dict(what="hf_generate", peer="transformers " + transformers.__version__,
                              model=a.model_dir, dtype=a.dtype, batch=bs, beams=beams,
                              input_tokens=int(mask.sum()), new_tokens=a.new_tokens, s=dt,
                              docs_per_s=bs / dt, gen_tok_per_s=bs * a.new_tokens / dt)), flush=True)


if __name__ == "__main__":
    main()
