#!/usr/bin/env python3
"""Tokens per second of the Hugging Face `tokenizers` library (BERT WordPiece, and byte-level
BPE with --bpe) and of
`sentencepiece` (unigram) on the benchmark corpus, one JSON line per measurement, in the form
benchmarks/tokenizer_bench.cc reads with --peer.

  hf_tokenize.py --corpus corpus.txt --vocab vocab.txt --spiece spiece.model
                 [--bpe tokenizer.json] [--repeat 3]

Single-thread figures come from a child process started with RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false (the library's thread pool is fixed when it starts); sentencepiece
gets num_threads=1. All-core figures use encode_batch and num_threads=-1 (every core).
The WordPiece tokenizer is built as make_random_models.bert_tokenizer builds it.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def bert_tokenizer(vocab_txt):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    words = open(vocab_txt, encoding="utf-8").read().split("\n")
    vocab = {w: i for i, w in enumerate(w for w in words if w)}
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=None, lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tk.add_special_tokens(["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"])
    return tk


def best(repeat, fn):
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        tokens = fn()
        seconds = time.perf_counter() - start
        if result is None or seconds < result[1]:
            result = (tokens, seconds)
    return result


def measure(args, threads):
    import sentencepiece as spm
    import tokenizers
    texts = [line for line in open(args.corpus, encoding="utf-8").read().split("\n") if line]
    tk = bert_tokenizer(args.vocab)
    sp = spm.SentencePieceProcessor(model_file=args.spiece)
    runs = [
        ("wordpiece", "tokenizers " + tokenizers.__version__,
         lambda: sum(len(e.ids) for e in tk.encode_batch(texts))),
        ("sentencepiece", "sentencepiece " + spm.__version__,
         lambda: sum(len(ids) for ids in sp.encode(texts, add_eos=True,
                                                     num_threads=1 if threads == 1 else -1))),
    ]
    if args.bpe:
        bpe = tokenizers.Tokenizer.from_file(args.bpe)
        bpe.no_truncation()
        bpe.no_padding()
        runs.append(("bpe", "tokenizers " + tokenizers.__version__,
                     lambda: sum(len(e.ids) for e in bpe.encode_batch(texts))))
    for name, impl, fn in runs:
        tokens, seconds = best(args.repeat, fn)
        print(json.dumps({"bench": "tokenizer", "impl": impl, "tokenizer": name, "threads": threads,
                          "cores": os.cpu_count(), "texts": len(texts), "tokens": tokens,
                          "seconds": seconds, "tokens_per_s": tokens / seconds}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--spiece", required=True)
    ap.add_argument("--bpe", help="a byte-level BPE tokenizer.json (tests/data/text/bpe)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", choices=["1", "all"])
    args = ap.parse_args()
    if args.threads == "1":
        measure(args, 1)
    elif args.threads == "all":
        measure(args, "all")
    else:
        env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--threads", "1"], env=env, check=True)
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--threads", "all"], check=True)


if __name__ == "__main__":
    main()
