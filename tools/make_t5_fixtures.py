#!/usr/bin/env python3
"""Tiny random-weight T5 folders and transformers' generate() ids for the T5 tests.

Needs torch, transformers (5.x) and sentencepiece; no network. Run from the repository root:

  python3 .device/bench/make_corpus.py /tmp/corpus      # or shared/bench/make_corpus.py
  python3 tools/make_t5_fixtures.py --corpus /tmp/corpus

Writes
  tests/data/models/t5-tiny-relu/    relu, tied embeddings (t5-small style)
  tests/data/models/t5-tiny-gated/   gated-gelu, untied embeddings (flan-t5 style)
each with config.json, generation_config.json, model.safetensors and spiece.model (a unigram
SentencePiece model trained on the corpus: pad 0, eos 1, unk 2, no bos, as T5's), and
  tests/data/t5/generate.json        inputs and generate() output ids, float32 on the CPU
  tests/data/t5/numerics.json        one input's encoder output and first decoder logits
The eos row of the output projection is scaled up (the smallest factor that makes between a
third and four fifths of the greedy outputs end early), so that texts finish at different steps.
Deterministic: fixed seeds, one thread.
"""
import argparse
import json
import os
import shutil
import tempfile

import torch

MAX_INPUT_TOKENS = 64
PREFIX = "summarize: "
MODELS = {
    "t5-tiny-relu": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "t5-tiny-gated": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}
SIZES = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
             relative_attention_num_buckets=32, relative_attention_max_distance=128)
# generate() keyword arguments of each recorded case; every case runs all inputs as one batch.
CASES = [
    ("greedy", dict(num_beams=1, max_new_tokens=32)),
    ("beam4_no_repeat3", dict(num_beams=4, no_repeat_ngram_size=3, max_new_tokens=32)),
    ("beam4_length_penalty2_early_true", dict(num_beams=4, length_penalty=2.0, early_stopping=True,
                                              max_new_tokens=24)),
    ("beam3_length_penalty0.5_never", dict(num_beams=3, length_penalty=0.5, early_stopping="never",
                                           max_new_tokens=24)),
    ("beam2_length_penalty-0.5", dict(num_beams=2, length_penalty=-0.5, max_new_tokens=16)),
    ("greedy_min10_no_repeat2", dict(num_beams=1, min_new_tokens=10, no_repeat_ngram_size=2,
                                     max_new_tokens=24)),
    ("beam4_min8", dict(num_beams=4, min_new_tokens=8, max_new_tokens=20)),
]


def train_tokenizer(corpus_txt, out_dir):
    import sentencepiece as spm
    with open(corpus_txt, encoding="utf-8") as f:
        lines = [next(f) for _ in range(4000)]
    with tempfile.TemporaryDirectory() as tmp:
        sample = os.path.join(tmp, "sample.txt")
        with open(sample, "w", encoding="utf-8") as f:
            f.writelines(lines)
        spm.SentencePieceTrainer.train(
            input=sample, model_prefix=os.path.join(tmp, "spiece"), vocab_size=1000,
            model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1,
            shuffle_input_sentence=False)
        shutil.copy(os.path.join(tmp, "spiece.model"), os.path.join(out_dir, "spiece.model"))
    return spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "spiece.model"))


def fixture_inputs(sp, corpus_txt):
    """Prefixed documents of many lengths, tokenized as T5's tokenizer does: ids + [</s>]."""
    docs = [line.rstrip("\n") for line in open(corpus_txt, encoding="utf-8")][4000:4400]
    docs.sort(key=len)
    picked = [docs[int(i * (len(docs) - 1) / 12)] for i in range(13)] + ["Rain."]
    return [sp.encode(PREFIX + d)[: MAX_INPUT_TOKENS - 1] + [1] for d in picked]


def batch(inputs):
    width = max(map(len, inputs))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in inputs])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in inputs])
    return ids, mask


def make_model(name, vocab_size, inputs):
    from transformers import T5Config, T5ForConditionalGeneration
    torch.manual_seed(0)
    config = T5Config(vocab_size=vocab_size, decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1, dropout_rate=0.0, **SIZES, **MODELS[name])
    model = T5ForConditionalGeneration(config).eval()
    head = model.get_output_embeddings().weight
    if config.tie_word_embeddings:
        assert head.data_ptr() == model.shared.weight.data_ptr(), "lm_head is not tied"
    original = head[1].detach().clone()
    ids, mask = batch(inputs)
    # The factor on a fine grid whose greedy outputs end early closest to half the time.
    # Negative too: for a random row the sign of its dot product with the decoder states
    # decides which way scaling pushes eos.
    best = None
    for factor in [s * (1 + 0.25 * i) for i in range(157) for s in (1, -1)]:
        with torch.no_grad():
            head[1] = original * factor
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=32,
                                 num_beams=1, do_sample=False)
        ended = sum(1 in row[1:].tolist() and row[1:].tolist().index(1) < 31 for row in out)
        score = abs(ended - len(inputs) / 2)
        if 0 < ended < len(inputs) and (best is None or score < best[0]):
            best = (score, factor)
    if best is None:
        raise SystemExit(f"{name}: no eos scale makes some texts, not all, end early")
    with torch.no_grad():
        head[1] = original * best[1]
    return model, best[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/tmp/corpus", help="make_corpus.py's output folder")
    ap.add_argument("--out", default=".", help="the repository root")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import sentencepiece
    import transformers

    corpus_txt = os.path.join(a.corpus, "corpus.txt")
    data_dir = os.path.join(a.out, "tests", "data", "t5")
    os.makedirs(data_dir, exist_ok=True)
    generate = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                             "sentencepiece": sentencepiece.__version__},
                "max_input_tokens": MAX_INPUT_TOKENS, "models": []}
    numerics = {"models": []}
    for name in MODELS:
        path = os.path.join(a.out, "tests", "data", "models", name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        sp = train_tokenizer(corpus_txt, path)
        inputs = fixture_inputs(sp, corpus_txt)
        model, factor = make_model(name, sp.get_piece_size() + 28, inputs)
        model.save_pretrained(path, safe_serialization=True)
        ids, mask = batch(inputs)
        cases = []
        for case_name, kwargs in CASES:
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kwargs)
            cases.append({"name": case_name, "options": kwargs, "sequences": out.tolist()})
        generate["models"].append({"name": name, "eos_scale": factor, "inputs": inputs,
                                   "cases": cases})
        with torch.no_grad():
            one = torch.tensor([inputs[0]])
            hidden = model.encoder(input_ids=one).last_hidden_state[0]
            logits = model(input_ids=one, decoder_input_ids=torch.tensor([[0]])).logits[0, -1]
        numerics["models"].append({"name": name, "input_ids": inputs[0],
                                   "encoder_last_hidden_state": hidden.tolist(),
                                   "first_step_logits": logits.tolist()})
        print(json.dumps({"made": name, "eos_scale": factor, "files": sorted(os.listdir(path))}),
              flush=True)
    with open(os.path.join(data_dir, "generate.json"), "w") as f:
        json.dump(generate, f)
    with open(os.path.join(data_dir, "numerics.json"), "w") as f:
        json.dump(numerics, f)


if __name__ == "__main__":
    main()
