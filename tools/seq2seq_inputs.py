"""Encoder inputs for a seq2seq model folder (T5, BART), as modelpool's Summarize() makes them.

The folder's summarization prefix (config.json's task_specific_params, else "summarize: " for
T5 and none for BART) before each text; T5 folders tokenized with sentencepiece itself
(ids + </s>), others with their tokenizer.json through the `tokenizers` library (<s> ids </s>);
texts cut at `max_tokens` ids keeping the closing one. Used by reference_generate_ids.py and
hf_generate_peer.py.
"""
import json
import os


def folder_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def summarization_prefix(config):
    params = (config.get("task_specific_params") or {}).get("summarization") or {}
    if params.get("prefix") is not None:
        return params["prefix"]
    return "summarize: " if config.get("model_type") in ("t5", "mt5") else ""


def token_ids(config):
    """(pad, eos) of the folder: the first eos when it lists several."""
    eos = config.get("eos_token_id", 1)
    return config.get("pad_token_id", 0), eos[0] if isinstance(eos, list) else eos


def make_encoder(model_dir, max_tokens):
    """A function from a list of texts to their rows of ids."""
    config = folder_config(model_dir)
    prefix = summarization_prefix(config)
    _, eos = token_ids(config)
    spiece = os.path.join(model_dir, "spiece.model")
    if os.path.exists(spiece):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=spiece)
        return lambda texts: [sp.encode(prefix + t)[: max_tokens - 1] + [eos] for t in texts]
    from tokenizers import Tokenizer
    tk = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tk.no_truncation()
    tk.no_padding()
    bos = config.get("bos_token_id", 0)
    return lambda texts: [[bos] + tk.encode(prefix + t, add_special_tokens=False).ids[: max_tokens - 2]
                          + [eos] for t in texts]


def pad_batch(rows, pad, device):
    import torch
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return ids, mask
