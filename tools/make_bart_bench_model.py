#!/usr/bin/env python3
"""A bart-large-cnn-shaped folder with random weights, for benchmarks (not correctness tests).

Usage: make_bart_bench_model.py OUT_DIR [--name bart-large-cnn]
Writes OUT_DIR/<name>/ as facebook/bart-large-cnn is published: config.json (d_model 1024, 12 + 12
layers, 16 heads, feed-forward 4096, 1024 positions, vocabulary 50265, gelu, tied embeddings),
generation_config.json with its generation settings (4 beams, length_penalty 2.0, min_length 56,
max_length 142, no_repeat_ngram_size 3, early_stopping, forced BOS/EOS), model.safetensors, and
the byte-level BPE of tests/data/text/bpe (trained on the benchmark corpus: its ids are a prefix
of the model's vocabulary). Needs torch and transformers; run from the repository root.
Throughput does not depend on the weights' values, as .device/bench/peers/make_random_models.py.
"""
import argparse
import json
import os
import shutil

import torch

GENERATION = dict(num_beams=4, length_penalty=2.0, min_length=56, max_length=142,
                  no_repeat_ngram_size=3, early_stopping=True, forced_bos_token_id=0,
                  forced_eos_token_id=2, bos_token_id=0, pad_token_id=1, eos_token_id=2,
                  decoder_start_token_id=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--name", default="bart-large-cnn")
    a = ap.parse_args()
    from transformers import BartConfig, BartForConditionalGeneration
    path = os.path.join(a.out_dir, a.name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    torch.manual_seed(0)
    config = BartConfig(vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12,
                        encoder_attention_heads=16, decoder_attention_heads=16,
                        encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
                        activation_function="gelu", scale_embedding=False,
                        tie_word_embeddings=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2)
    BartForConditionalGeneration(config).save_pretrained(path, safe_serialization=True)
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump(GENERATION, f, indent=2)
    bpe = os.path.join("tests", "data", "text", "bpe")
    for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.json", "merges.txt"):
        shutil.copy(os.path.join(bpe, file), os.path.join(path, file))
    print(json.dumps({"made": a.name, "path": path, "files": sorted(os.listdir(path))}), flush=True)


if __name__ == "__main__":
    main()
