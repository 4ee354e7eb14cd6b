#!/usr/bin/env python3
"""Tiny random-weight RoBERTa and XLM-RoBERTa embedding models and what sentence-transformers
makes of them.

Needs torch, transformers (5.x), tokenizers, sentence-transformers and safetensors; no network.
Run from the repository root (tools/gpu_steps.sh fixtures_models does):

  python3 tools/make_roberta_fixtures.py [--out tests/data]

Writes, under --out:
  models/roberta-tiny-mean/      model_type roberta, the byte-level BPE of tests/data/text/bpe,
                                 mean pooling, no Normalize, gelu, the weights under "roberta."
                                 in two shards with an index
  models/xlm-roberta-tiny-cls/   model_type xlm-roberta, the Unigram of tests/data/text/unigram,
                                 CLS pooling then Normalize, gelu_new, one model.safetensors
  roberta/<model>.json           per case (a text, maybe with a prompt): the ids the reference
                                 tokenizer gives (cut at max_seq_length), the embedding encode()
                                 gives for the text, and the embedding of those ids alone, in the
                                 layout of tests/data/bert/<model>.json
Both models: hidden 48, 3 layers, 4 heads, intermediate 96, pad_token_id 1 (so positions start at
2, and 66 position rows give max_seq_length 64), type_vocab_size 1. The texts are those of
tools/make_bert_fixtures.py and one with a literal "<pad>" inside (its position is pad_token_id,
not counted). Seeded; the reference runs on the CPU in float32. Each model is made on its own:
one that fails is reported and the other is still written; the exit status is non-zero if any
failed.
"""
import argparse
import json
import os
import shutil
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bert_fixtures as bert  # noqa: E402  (sets the offline variables, imports torch)

torch = bert.torch
MAX_LENGTH = bert.MAX_LENGTH
PAD = 1
TEXTS = bert.TEXTS + ["A <pad> inside the text, and words after it."]
MODELS = {
    "roberta-tiny-mean": dict(model_type="roberta", tokenizer="bpe", pooling="mean",
                              normalize=False, hidden_act="gelu", include_prompt=True,
                              prefix="roberta.", shards=2, seed=bert.SEED + 11),
    "xlm-roberta-tiny-cls": dict(model_type="xlm-roberta", tokenizer="unigram", pooling="cls",
                                 normalize=True, hidden_act="gelu_new", include_prompt=True,
                                 prefix="", shards=1, seed=bert.SEED + 12),
}


def log(**fields):
    print(json.dumps(fields), flush=True)


def fast_tokenizer(kind):
    """The tokenizer.json of tests/data/text/<kind> wrapped for transformers (which ignores
    *TokenizerFast(vocab_file=...) in version 5), with RoBERTa's special tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    backend = Tokenizer.from_file(os.path.join("tests", "data", "text", kind, "tokenizer.json"))
    backend.no_truncation()
    backend.no_padding()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", sep_token="</s>", pad_token="<pad>",
                                   cls_token="<s>", mask_token="<mask>",
                                   model_max_length=MAX_LENGTH)
    ids = fast("hello")["input_ids"]
    assert len(fast) == backend.get_vocab_size(with_added_tokens=True), len(fast)
    assert ids[0] == 0 and ids[-1] == 2 and fast.pad_token_id == PAD, ids
    return fast


def random_model(spec, vocab_size):
    from transformers import RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel
    config_class, model_class = ((RobertaConfig, RobertaModel) if spec["model_type"] == "roberta"
                                 else (XLMRobertaConfig, XLMRobertaModel))
    torch.manual_seed(spec["seed"])
    config = config_class(vocab_size=vocab_size, hidden_size=48, num_hidden_layers=3,
                          num_attention_heads=4, intermediate_size=96,
                          max_position_embeddings=MAX_LENGTH + PAD + 1, type_vocab_size=1,
                          hidden_act=spec["hidden_act"], layer_norm_eps=1e-5, pad_token_id=PAD,
                          bos_token_id=0, eos_token_id=2, initializer_range=0.2)
    assert config.model_type == spec["model_type"], config.model_type
    model = model_class(config)
    # As make_bert_fixtures.py: attention far from uniform, LayerNorms that are not 1 and 0.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model.eval()


def reference_cases(st, name, spec):
    tokenizer = st.tokenizer
    cases = [("", t) for t in TEXTS] + [(bert.PROMPT, t) for t in bert.PROMPTED_TEXTS]
    plain = st.encode(TEXTS, batch_size=8, convert_to_tensor=True)
    prompted = st.encode(bert.PROMPTED_TEXTS, prompt=bert.PROMPT, batch_size=8,
                         convert_to_tensor=True)
    out = []
    for (prompt, text), embedding in zip(cases, list(plain) + list(prompted)):
        ids = tokenizer(prompt + text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        whole = tokenizer(prompt + text, truncation=False)["input_ids"]
        features = {"input_ids": torch.tensor([ids]),
                    "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        with torch.no_grad():
            from_ids = st(features)["sentence_embedding"][0]
        if bert.cosine(embedding, from_ids) < 0.999999:
            log(warning="encode() and the ids alone disagree", model=name, text=text,
                cosine=bert.cosine(embedding, from_ids))
        out.append({"text": text, "prompt": prompt, "input_ids": ids,
                    "truncated": len(whole) > len(ids),
                    "embedding": [float(x) for x in embedding],
                    "ids_embedding": [float(x) for x in from_ids]})
    inner_pad = [c for c in out if PAD in c["input_ids"][1:-1]]
    log(model=name, cases=len(out), truncated=sum(c["truncated"] for c in out),
        with_inner_pad=len(inner_pad))
    return out


def make(name, spec, out, versions):
    path = os.path.join(out, "models", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    tokenizer = fast_tokenizer(spec["tokenizer"])
    model = random_model(spec, len(tokenizer))
    bert.save_weights(model, path, spec["prefix"], spec["shards"])
    tokenizer.save_pretrained(path)
    bert.sentence_transformers_files(path, spec, versions)
    st = bert.load_reference(path, model, spec)
    cases = reference_cases(st, name, spec)
    os.makedirs(os.path.join(out, "roberta"), exist_ok=True)
    reference = os.path.join(out, "roberta", name + ".json")
    bert.write_json(reference, {
        "model": name, "made_with": versions, "max_seq_length": MAX_LENGTH, "dimension": 48,
        "pooling": spec["pooling"], "normalize": spec["normalize"],
        "include_prompt": spec["include_prompt"], "cases": cases})
    log(made=name, folder=path, reference=reference, cases=len(cases), vocab=len(tokenizer),
        files=sorted(os.listdir(path)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join("tests", "data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import safetensors
    import sentence_transformers
    import tokenizers
    import transformers
    versions = {"sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "safetensors": safetensors.__version__, "pytorch": torch.__version__}
    failed = []
    for name, spec in MODELS.items():
        try:
            make(name, spec, args.out, versions)
        except Exception:  # noqa: BLE001 - one model's failure must not stop the other
            traceback.print_exc()
            log(failed=name)
            failed.append(name)
    if failed:
        log(failed_models=failed)
        sys.exit(1)


if __name__ == "__main__":
    main()
