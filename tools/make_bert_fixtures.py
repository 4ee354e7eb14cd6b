#!/usr/bin/env python3
"""Tiny random-weight BERT embedding models and what sentence-transformers makes of them.

Needs torch, transformers, tokenizers, sentence-transformers and safetensors; no network. Run
from the repository root:

  python3 tools/make_bert_fixtures.py [--out tests/data]

Writes, under --out:
  models/bert-tiny-cls/   CLS pooling then Normalize (a module without a folder, as on the hub),
                          gelu, one model.safetensors; also the example's bundled model
  models/bert-tiny-mean/  mean pooling without Normalize, include_prompt false, gelu_new, the
                          weights under the "bert." prefix in two shards with an index
  bert/<model>.json       per case (a text, maybe with a prompt): the ids the reference
                          tokenizer gives (cut at max_seq_length), the embedding encode() gives
                          for the text, and the embedding of those ids alone
Both models: hidden 48, 3 layers, 4 heads, intermediate 96, 64 positions, max_seq_length 64 (so
long texts are cut), type_vocab_size 2, a WordPiece vocabulary of about 1,000 entries built from
the texts below. Everything is seeded; the reference runs on the CPU in float32.
"""
import argparse
import collections
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

SEED = 20261123
MAX_LENGTH = 64
PROMPT = "Represent this sentence for searching relevant passages: "
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNKNOWN_CHARS = {"🍕"}  # left out of the vocabulary so [UNK] is exercised

LONG_TEXTS = [
    "The river starts in the mountains as a thin stream of melted snow and grows as it runs "
    "down through the forests, where small creeks join it from both sides. By the time it "
    "reaches the plain it is wide and slow, and farmers have dug channels to carry its water "
    "to their fields. In the spring the river floods the low meadows, leaving behind a layer "
    "of rich mud, and in the autumn the geese stop on its sand banks before they fly south. "
    "The town at its mouth was built around a harbour, and for centuries its people lived by "
    "fishing, trading salt and repairing the boats that came down the river with timber.",
    "Modern processors execute many instructions at once. They fetch several instructions per "
    "cycle, decode them into smaller operations, rename registers to remove false dependencies "
    "and send the operations to execution units as soon as their inputs are ready. Branch "
    "predictors guess which way each branch will go so that the pipeline stays full, and caches "
    "keep recently used data close to the cores. When a guess is wrong the work done after it "
    "is thrown away, which is why code with unpredictable branches can run much slower than "
    "code that does the same amount of arithmetic in a straight line.",
    " ".join(["embedding"] * 40 + ["models", "turn", "text", "into", "vectors"] * 12),
]

TEXTS = [
    "",
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "How do I bake sourdough bread at home?",
    "   leading and trailing spaces   ",
    "Tabs\tand\nnewlines\r\nin one text",
    "UPPER CASE and lower case and MiXeD CaSe",
    "Numbers: 3.14159, 2.71828 and 1,000,000.",
    "e-mail: someone@example.com, url: https://example.org/a?b=c",
    "Café, naïve, résumé, façade, jalapeño, Ångström.",
    "Größe, Straße, Übermut, Ödipus, Ärger.",
    "Ελληνικά κείμενα και λέξεις.",
    "Русский текст для проверки.",
    "東京は日本の首都です。",
    "北京欢迎你",
    "I love 🍕 and ☕!",
    "a",
    ".",
    "?!?!",
    "don't won't can't shouldn't",
    "state-of-the-art, well-known, twenty-one",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The the the the the the the the.",
    "Zero\u200bwidth space, soft\u00adhyphen and a control\u0007character",
    "The quick brown fox jumps over the lazy dog.",  # a repeat: the same vector
] + LONG_TEXTS

PROMPTED_TEXTS = [
    "What is the capital of France?",
    "How do I bake sourdough bread at home?",
    "A man is eating food.",
    "",
    LONG_TEXTS[0],
]

# Pieces that make the vocabulary split words the way real ones do.
SUFFIXES = ["##s", "##es", "##ed", "##ing", "##er", "##ers", "##ly", "##tion", "##al", "##ic",
            "##ous", "##ness", "##ment", "##able", "##th", "##an", "##in", "##on", "##re", "##at"]

MODELS = {
    "bert-tiny-cls": dict(pooling="cls", normalize=True, hidden_act="gelu", include_prompt=True,
                          prefix="", shards=1, seed=SEED + 1),
    "bert-tiny-mean": dict(pooling="mean", normalize=False, hidden_act="gelu_new",
                           include_prompt=False, prefix="bert.", shards=2, seed=SEED + 2),
}


def backend_tokenizer(vocab):
    """BERT uncased WordPiece built with the tokenizers library (transformers 5 ignores
    BertTokenizerFast(vocab_file=...)), as .device/bench/peers/make_random_models.py does."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=None, lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tk.decoder = decoders.WordPiece(prefix="##")
    return tk


def fast_tokenizer(vocab):
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_object=backend_tokenizer(vocab), unk_token="[UNK]",
                                   sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                   mask_token="[MASK]", model_max_length=MAX_LENGTH)
    assert len(fast) == len(vocab) and fast("hello")["input_ids"][0] == vocab["[CLS]"], \
        "the tokenizer did not load the vocabulary"
    return fast


def build_vocab():
    """Specials, every character of the texts (alone and as ##piece), common suffixes, and the
    words seen twice or more or shorter than six letters; longer words seen once are split."""
    from tokenizers import normalizers, pre_tokenizers
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                            strip_accents=None, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = collections.Counter()
    for text in TEXTS + [PROMPT]:
        for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
            counts[word] += 1
    chars = sorted({c for w in counts for c in w} - UNKNOWN_CHARS)
    words = sorted(w for w, n in counts.items() if len(w) > 1 and (n >= 2 or len(w) < 6))
    entries = SPECIALS + chars + ["##" + c for c in chars] + SUFFIXES + words
    entries = list(dict.fromkeys(entries))
    return {token: i for i, token in enumerate(entries)}


def random_model(vocab_size, hidden_act, seed):
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=48, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=96,
                        max_position_embeddings=MAX_LENGTH, type_vocab_size=2,
                        hidden_act=hidden_act, layer_norm_eps=1e-12, pad_token_id=0,
                        initializer_range=0.2)
    model = BertModel(config)
    # Weights large enough that attention is far from uniform, and LayerNorm parameters that
    # are not 1 and 0, so a mistake in either shows in the outputs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model.eval()


def save_weights(model, path, prefix, shards):
    from safetensors.torch import save_file
    if prefix == "" and shards == 1:
        model.save_pretrained(path, safe_serialization=True)
        return
    model.config.save_pretrained(path)
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    names = sorted(state)
    first = [n for n in names if "embeddings." in n or ".layer.0." in n]
    groups = [first, [n for n in names if n not in first]]
    assert shards == 2 and all(groups)
    weight_map, total = {}, 0
    for i, group in enumerate(groups, 1):
        file = f"model-{i:05d}-of-{shards:05d}.safetensors"
        save_file({n: state[n] for n in group}, os.path.join(path, file), metadata={"format": "pt"})
        for n in group:
            weight_map[n] = file
            total += state[n].numel() * state[n].element_size()
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def sentence_transformers_files(path, spec, versions):
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if spec["normalize"]:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    write_json(os.path.join(path, "modules.json"), modules)
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    write_json(os.path.join(path, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 48,
        "pooling_mode_cls_token": spec["pooling"] == "cls",
        "pooling_mode_mean_tokens": spec["pooling"] == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": spec["include_prompt"],
    })
    write_json(os.path.join(path, "sentence_bert_config.json"),
               {"max_seq_length": MAX_LENGTH, "do_lower_case": False})
    write_json(os.path.join(path, "config_sentence_transformers.json"), {
        "__version__": versions, "model_type": "SentenceTransformer",
        "prompts": {"query": PROMPT, "document": ""}, "default_prompt_name": None,
        "similarity_fn_name": "cosine"})


def make_model_folder(path, name, spec, vocab, versions):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    model = random_model(len(vocab), spec["hidden_act"], spec["seed"])
    save_weights(model, path, spec["prefix"], spec["shards"])
    fast_tokenizer(vocab).save_pretrained(path)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(token + "\n" for token in vocab))
    sentence_transformers_files(path, spec, versions)
    return model


def load_reference(path, model, spec):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(path, device="cpu")
    st.eval()
    from transformers import PreTrainedModel
    encoder = next(m for m in st[0].modules() if isinstance(m, PreTrainedModel))
    loaded = encoder.state_dict()
    for k, v in model.state_dict().items():
        assert k in loaded and torch.equal(loaded[k], v), f"{path}: {k} did not load as saved"
    assert st.max_seq_length == MAX_LENGTH, st.max_seq_length
    kinds = [type(m).__name__ for m in st]
    assert ("Normalize" in kinds) == spec["normalize"], kinds
    return st


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def reference_cases(st, name, spec):
    tokenizer = st.tokenizer
    cases = [("", t) for t in TEXTS] + [(PROMPT, t) for t in PROMPTED_TEXTS]
    plain = st.encode(TEXTS, batch_size=8, convert_to_tensor=True)
    prompted = st.encode(PROMPTED_TEXTS, prompt=PROMPT, batch_size=8, convert_to_tensor=True)
    encoded = list(plain) + list(prompted)
    out = []
    for (prompt, text), embedding in zip(cases, encoded):
        ids = tokenizer(prompt + text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        whole = tokenizer(prompt + text, truncation=False)["input_ids"]
        features = {"input_ids": torch.tensor([ids]),
                    "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                    "token_type_ids": torch.zeros(1, len(ids), dtype=torch.long)}
        with torch.no_grad():
            from_ids = st(features)["sentence_embedding"][0]
        if not prompt or spec["include_prompt"]:
            assert cosine(embedding, from_ids) > 0.999999, (name, prompt, text)
        out.append({
            "text": text,
            "prompt": prompt,
            "input_ids": ids,
            "truncated": len(whole) > len(ids),
            "embedding": [float(x) for x in embedding],
            "ids_embedding": [float(x) for x in from_ids],
        })
    assert any(c["truncated"] for c in out) and any(1 in c["input_ids"] for c in out), \
        "the cases must cut a long text and meet [UNK]"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import safetensors
    import sentence_transformers
    import tokenizers
    import transformers
    versions = {"sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "safetensors": safetensors.__version__, "pytorch": torch.__version__}
    vocab = build_vocab()
    os.makedirs(os.path.join(args.out, "bert"), exist_ok=True)
    for name, spec in MODELS.items():
        path = os.path.join(args.out, "models", name)
        model = make_model_folder(path, name, spec, vocab, versions)
        st = load_reference(path, model, spec)
        cases = reference_cases(st, name, spec)
        write_json(os.path.join(args.out, "bert", name + ".json"), {
            "model": name, "made_with": versions, "max_seq_length": MAX_LENGTH,
            "dimension": 48, "pooling": spec["pooling"], "normalize": spec["normalize"],
            "include_prompt": spec["include_prompt"], "cases": cases})
        print(json.dumps({"made": name, "cases": len(cases), "vocab": len(vocab),
                          "files": sorted(os.listdir(path))}), flush=True)


if __name__ == "__main__":
    main()
