#!/usr/bin/env python3
"""Checks the BPE and Unigram fixtures of tools/make_bpe_fixtures.mjs with Python's `tokenizers`
and `transformers`: every tokenizer of bpe_expected.json is encoded again from its files, and
also through transformers' classes built from them (RobertaTokenizerFast and BartTokenizer from
vocab.json + merges.txt, XLMRobertaTokenizerFast from the Unigram tokenizer.json). Prints one
JSON line per tokenizer and class with the number of texts whose ids differ (0 expected), and
exits non-zero if any differ.

Usage, from the repository root (tokenizers 0.23.2, transformers 5.x):
  python3 tools/make_bpe_fixtures.py tests/data/text
"""
import json
import os
import sys


def texts_of(corpus):
    return [(group, t) for group in ("hard", "random") for t in corpus[group]]


def main():
    data = sys.argv[1]
    import tokenizers
    import transformers
    corpus = json.load(open(os.path.join(data, "corpus.json"), encoding="utf-8"))
    expected = json.load(open(os.path.join(data, "bpe_expected.json"), encoding="utf-8"))
    max_length = corpus["max_length"]

    def check(name, key, encode):
        differ = 0
        for group in ("hard", "random"):
            for mode, kwargs in (("special", {"special": True}), ("plain", {"special": False}),
                                 ("truncated", {"special": True, "max_length": max_length})):
                for text, ids in zip(corpus[group], expected[key][group][mode]):
                    differ += encode(text, **kwargs) != ids
        print(json.dumps({"tokenizer": key, "via": name, "differ": differ,
                          "tokenizers": tokenizers.__version__,
                          "transformers": transformers.__version__}), flush=True)
        return differ

    def from_library(tk):
        tk.no_padding()

        def encode(text, special, max_length=None):
            if max_length:
                tk.enable_truncation(max_length)
            else:
                tk.no_truncation()
            return tk.encode(text, add_special_tokens=special).ids
        return encode

    def from_transformers(tok):
        def encode(text, special, max_length=None):
            return tok(text, add_special_tokens=special, truncation=bool(max_length),
                       max_length=max_length)["input_ids"]
        return encode

    failures = 0
    for key, path in (("bpe", "bpe/tokenizer.json"), ("bpe_prefix", "bpe_prefix/tokenizer.json"),
                      ("unigram", "unigram/tokenizer.json"), ("t5_small", "t5-small/tokenizer.json")):
        tk = tokenizers.Tokenizer.from_file(os.path.join(data, path))
        failures += check("tokenizers.Tokenizer", key, from_library(tk))
    bpe = os.path.join(data, "bpe")
    for cls in (transformers.RobertaTokenizerFast, transformers.BartTokenizer):
        tok = cls(vocab_file=os.path.join(bpe, "vocab.json"), merges_file=os.path.join(bpe, "merges.txt"))
        failures += check(cls.__name__ + "(vocab.json, merges.txt)", "bpe", from_transformers(tok))
    tok = transformers.XLMRobertaTokenizerFast(tokenizer_file=os.path.join(data, "unigram", "tokenizer.json"))
    failures += check("XLMRobertaTokenizerFast(tokenizer.json)", "unigram", from_transformers(tok))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
