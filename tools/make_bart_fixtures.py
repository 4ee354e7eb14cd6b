#!/usr/bin/env python3
"""Tiny random-weight BART folders and transformers' generate() ids for the BART tests.

Needs torch, transformers (5.x), tokenizers and safetensors; no network. Run from the
repository root (tools/gpu_steps.sh fixtures_models does):

  python3 tools/make_bart_fixtures.py [--corpus /tmp/corpus] [--out tests/data]

Writes, under --out:
  models/bart-tiny/        encoder 2 + decoder 2 layers, gelu, tied embeddings, final_logits_bias
                           zero, bart-large-cnn's generation keys in config.json only (no
                           generation_config.json), as bart-large-cnn's folder was published
  models/distilbart-tiny/  encoder 2 + decoder 1 layers (distilbart-cnn-12-6's shape, scaled
                           down), relu, untied lm_head, final_logits_bias random, scale_embedding,
                           other heads and feed-forward sizes in the decoder, its generation keys
                           in generation_config.json
  each with config.json, model.safetensors and the byte-level BPE tokenizer of
  tests/data/text/bpe (<s> 0, <pad> 1, </s> 2, as BART's);
  bart/generate.json       per model: the inputs (documents of many lengths, <s> ... </s>), the
                           folder's generation settings, and per case the options asked for (as
                           GenerationOptions says them: they override the folder's), the
                           settings transformers ran with, and generate()'s output rows
  bart/numerics.json       one input's encoder output and first decoder logits
The eos row of the output projection is scaled (the factor that makes closest to half of the
greedy outputs end early) so that texts end at different steps. Deterministic: fixed seeds, one
thread, float32 on the CPU. Each model is made on its own: one that fails is reported and the
others are still written; the exit status is non-zero if any failed.

Settings are passed to generate() as a complete GenerationConfig (also set as the model's), so
no default of transformers' BartConfig or of an earlier transformers version enters them, and
the generation keys are written into the folder's files last, by this script, after the
reference ran on the folder as save_pretrained wrote it and from_pretrained read it back.
"""
import argparse
import json
import os
import shutil
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

MAX_INPUT_TOKENS = 64
MAX_NEW_TOKENS = 32
MAX_POSITIONS = 128
BOS, PAD, EOS = 0, 1, 2
TOKENIZER_DIR = os.path.join("tests", "data", "text", "bpe")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt"]

MODELS = {
    "bart-tiny": dict(
        config=dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                    activation_function="gelu", scale_embedding=False, tie_word_embeddings=True),
        final_logits_bias=False, seed=20261201,
        # bart-large-cnn's keys (num_beams 4, length_penalty 2.0, min_length 56, max_length 142,
        # no_repeat_ngram_size 3, early_stopping, forced BOS/EOS), lengths scaled down.
        generation=dict(num_beams=4, length_penalty=2.0, min_length=12, max_length=30,
                        no_repeat_ngram_size=3, early_stopping=True, forced_bos_token_id=BOS,
                        forced_eos_token_id=EOS),
        generation_file="config.json"),
    "distilbart-tiny": dict(
        config=dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                    decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=48,
                    activation_function="relu", scale_embedding=True, tie_word_embeddings=False),
        final_logits_bias=True, seed=20261202,
        generation=dict(num_beams=3, length_penalty=1.5, min_length=8, max_length=24,
                        no_repeat_ngram_size=3, early_stopping=True, forced_bos_token_id=BOS,
                        forced_eos_token_id=EOS),
        generation_file="generation_config.json"),
}

# Options asked for, as GenerationOptions names them; each overrides the folder's settings
# (Note [Generation defaults from the folder]): max_new_tokens replaces max_length,
# min_new_tokens replaces min_length. Every case runs all inputs as one batch.
CASES = [
    ("defaults", dict()),
    ("greedy", dict(num_beams=1, max_new_tokens=32, min_new_tokens=0)),
    ("greedy_no_repeat2", dict(num_beams=1, no_repeat_ngram_size=2, max_new_tokens=24,
                               min_new_tokens=0)),
    ("beam4_no_repeat3_length_penalty2", dict(num_beams=4, no_repeat_ngram_size=3,
                                              length_penalty=2.0, max_new_tokens=32,
                                              min_new_tokens=0)),
    ("beam4_length_penalty0.5_never", dict(num_beams=4, length_penalty=0.5, early_stopping="never",
                                           max_new_tokens=24, min_new_tokens=0)),
    ("beam3_heuristic_min8", dict(num_beams=3, early_stopping=False, min_new_tokens=8,
                                  max_new_tokens=20)),
    ("beam2_no_repeat_off", dict(num_beams=2, no_repeat_ngram_size=0, max_new_tokens=16,
                                 min_new_tokens=0)),
]

FALLBACK_DOCS = [
    "The committee met on Tuesday and agreed to delay the vote until the budget is final.",
    "Engineers replaced the pump, tested the valves, and reopened the plant after two days.",
    "A storm crossed the coast overnight, closing roads and cutting power to thousands of homes "
    "while crews worked to clear fallen trees before the morning traffic.",
    "Researchers measured the temperature of the lake every hour for a year and found that the "
    "deep water warmed later than the surface, which changed when the fish moved to feed.",
]


def log(**fields):
    print(json.dumps(fields), flush=True)


def read_docs(corpus):
    path = os.path.join(corpus, "corpus.txt") if corpus else ""
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            docs = [line.rstrip("\n") for _, line in zip(range(4400), f)][4000:]
        if len(docs) >= 13:
            return docs, path
    log(warning="no corpus; using the built-in documents", corpus=path)
    return [" ".join(FALLBACK_DOCS[i:] + FALLBACK_DOCS[:i]) * (1 + i % 3)
            for i in range(len(FALLBACK_DOCS))] * 4, "built-in"


def fixture_inputs(tokenizer, docs):
    """Documents of many lengths, as BART's tokenizer gives them: <s> ids </s>, cut to fit."""
    docs = sorted(docs, key=len)
    picked = [docs[int(i * (len(docs) - 1) / 12)] for i in range(13)] + ["Rain."]
    rows = []
    for doc in picked:
        ids = tokenizer.encode(doc, add_special_tokens=False).ids
        rows.append([BOS] + ids[: MAX_INPUT_TOKENS - 2] + [EOS])
    return rows


def batch(inputs):
    width = max(map(len, inputs))
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in inputs])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in inputs])
    return ids, mask


def settings_for(defaults, options):
    """What transformers runs for `options` over the folder's `defaults`, as modelpool resolves
    GenerationOptions; beam-only keys are left out of greedy settings."""
    s = dict(defaults)
    for key, value in options.items():
        if key == "max_new_tokens":
            s.pop("max_length", None)
        if key == "min_new_tokens":
            s.pop("min_length", None)
        s[key] = value
    if s.get("num_beams", 1) == 1:
        s.pop("length_penalty", None)
        s.pop("early_stopping", None)
    s.update(do_sample=False, bos_token_id=BOS, pad_token_id=PAD, eos_token_id=EOS,
             decoder_start_token_id=EOS)
    return s


def generate(model, ids, mask, settings):
    from transformers import GenerationConfig
    config = GenerationConfig(**settings)
    model.generation_config = config
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    return out.tolist()


def randomize(model, spec):
    """Weights large enough that attention is far from uniform and logits spread (BART's
    init_std of 0.02 leaves a tiny model near ties), LayerNorms that are not 1 and 0."""
    torch.manual_seed(spec["seed"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                p.copy_((1 + 0.2 * torch.randn_like(p)) if name.endswith("weight")
                        else 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif p.dim() == 2 and ("embed" in name or "shared" in name or "lm_head" in name):
                p.copy_(0.5 * torch.randn_like(p))
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias.copy_(0.5 * torch.randn_like(bias) if spec["final_logits_bias"]
                       else torch.zeros_like(bias))
        elif spec["final_logits_bias"]:
            log(warning="this transformers' BART has no final_logits_bias")


def make_model(spec, vocab_size, inputs):
    from transformers import BartConfig, BartForConditionalGeneration
    config = BartConfig(vocab_size=vocab_size, max_position_embeddings=MAX_POSITIONS,
                        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
                        decoder_start_token_id=EOS, **spec["config"])
    model = BartForConditionalGeneration(config).eval()
    randomize(model, spec)
    head = model.get_output_embeddings().weight
    tied = head.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    if tied != spec["config"]["tie_word_embeddings"]:
        log(warning="lm_head tying is not what the config says", tied=tied)
    original = head[EOS].detach().clone()
    ids, mask = batch(inputs)
    search = settings_for(spec["generation"], dict(num_beams=1, max_new_tokens=MAX_NEW_TOKENS,
                                                   min_new_tokens=0))
    # The factor on a fine grid whose greedy outputs end early closest to half the time.
    # Negative too: the sign of the row's dot product with the decoder states decides which
    # way scaling pushes eos.
    best = None
    for factor in [s * (1 + 0.25 * i) for i in range(157) for s in (1, -1)]:
        with torch.no_grad():
            head[EOS] = original * factor
        out = generate(model, ids, mask, search)
        ended = sum(EOS in row[1:] and row[1:].index(EOS) < MAX_NEW_TOKENS - 1 for row in out)
        score = abs(ended - len(inputs) / 2)
        if 0 < ended < len(inputs) and (best is None or score < best[0]):
            best = (score, factor)
    if best is None:
        raise RuntimeError("no eos scale makes some texts, not all, end early")
    with torch.no_grad():
        head[EOS] = original * best[1]
    return model, best[1]


def stored_names(path):
    from safetensors import safe_open
    with safe_open(os.path.join(path, "model.safetensors"), framework="pt") as f:
        return sorted(f.keys())


def reload(path, model):
    """The folder as transformers reads it back; differences from the model in memory are
    reported (the reference is what the files say)."""
    from transformers import BartForConditionalGeneration
    loaded = BartForConditionalGeneration.from_pretrained(path).float().eval()
    ours, theirs = model.state_dict(), loaded.state_dict()
    differ = sorted(k for k, v in ours.items() if k not in theirs or not torch.equal(theirs[k], v))
    if differ:
        log(warning="weights that did not load back as saved", tensors=differ)
    return loaded


def write_generation_settings(path, spec):
    """The folder's generation keys, where the spec puts them; written by hand, after the
    reference ran, so that no version of save_pretrained moves or drops them."""
    settings = dict(spec["generation"], bos_token_id=BOS, pad_token_id=PAD, eos_token_id=EOS,
                    decoder_start_token_id=EOS)
    config_path = os.path.join(path, "config.json")
    generation_path = os.path.join(path, "generation_config.json")
    if spec["generation_file"] == "config.json":
        with open(config_path) as f:
            config = json.load(f)
        config.update(settings)
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        if os.path.exists(generation_path):
            os.remove(generation_path)
    else:
        with open(generation_path, "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)


def make_folder(name, spec, out, tokenizer, inputs):
    path = os.path.join(out, "models", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    model, factor = make_model(spec, tokenizer.get_vocab_size(with_added_tokens=True), inputs)
    # Saved with token ids only: the folder's generation keys are written at the end.
    from transformers import GenerationConfig
    model.generation_config = GenerationConfig(bos_token_id=BOS, pad_token_id=PAD, eos_token_id=EOS,
                                               decoder_start_token_id=EOS)
    model.save_pretrained(path, safe_serialization=True)
    for file in TOKENIZER_FILES:
        source = os.path.join(TOKENIZER_DIR, file)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(path, file))
    names = stored_names(path)
    log(model=name, stored=[n for n in names if ".layers." not in n])
    try:
        model = reload(path, model)
    except Exception:  # noqa: BLE001 - the model in memory is the next best reference
        traceback.print_exc()
        log(warning="from_pretrained failed; the reference is the model in memory", model=name)

    ids, mask = batch(inputs)
    defaults = spec["generation"]
    cases = []
    for case_name, options in CASES:
        settings = settings_for(defaults, options)
        sequences = generate(model, ids, mask, settings)
        cases.append({"name": case_name, "options": options, "generation_config": settings,
                      "sequences": sequences})
        log(model=name, case=case_name,
            lengths=[row[1:].index(EOS) + 1 if EOS in row[1:] else len(row) - 1
                     for row in sequences])
    with torch.no_grad():
        one = torch.tensor([inputs[0]])
        hidden = model.get_encoder()(input_ids=one).last_hidden_state[0]
        logits = model(input_ids=one, decoder_input_ids=torch.tensor([[EOS]])).logits[0, -1]
    write_generation_settings(path, spec)
    generated = {"name": name, "eos_scale": factor, "inputs": inputs, "defaults": defaults,
                 "generation_file": spec["generation_file"], "stored_tensors": len(names),
                 "cases": cases}
    numerics = {"name": name, "input_ids": inputs[0],
                "encoder_last_hidden_state": hidden.tolist(), "first_step_logits": logits.tolist()}
    log(made=name, folder=path, eos_scale=factor, files=sorted(os.listdir(path)))
    return generated, numerics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/tmp/corpus", help="make_corpus.py's output folder")
    ap.add_argument("--out", default=os.path.join("tests", "data"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    import tokenizers
    import transformers
    tokenizer = tokenizers.Tokenizer.from_file(os.path.join(TOKENIZER_DIR, "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    docs, source = read_docs(a.corpus)
    inputs = fixture_inputs(tokenizer, docs)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "tokenizers": tokenizers.__version__}
    generate_json = {"versions": versions, "corpus": source, "max_input_tokens": MAX_INPUT_TOKENS,
                     "max_new_tokens": MAX_NEW_TOKENS, "eos_token_id": EOS, "models": []}
    numerics_json = {"versions": versions, "models": []}
    failed = []
    for name, spec in MODELS.items():
        try:
            generated, numerics = make_folder(name, spec, a.out, tokenizer, inputs)
        except Exception:  # noqa: BLE001 - one model's failure must not stop the others
            traceback.print_exc()
            log(failed=name)
            failed.append(name)
            continue
        generate_json["models"].append(generated)
        numerics_json["models"].append(numerics)
    data_dir = os.path.join(a.out, "bart")
    if generate_json["models"]:
        os.makedirs(data_dir, exist_ok=True)
        with open(os.path.join(data_dir, "generate.json"), "w") as f:
            json.dump(generate_json, f)
        with open(os.path.join(data_dir, "numerics.json"), "w") as f:
            json.dump(numerics_json, f)
        log(wrote=[os.path.join(data_dir, "generate.json"), os.path.join(data_dir, "numerics.json")],
            models=[m["name"] for m in generate_json["models"]])
    if failed:
        log(failed_models=failed)
        sys.exit(1)


if __name__ == "__main__":
    main()
