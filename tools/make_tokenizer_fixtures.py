#!/usr/bin/env python3
"""Reference token ids for the tokenizer tests, made with the reference libraries themselves.

Writes into OUT_DIR (which becomes tests/data/text/; at most 8 files):
  corpus.json                 the texts: hard cases, seeded random mixed-script strings, the
                              first BENCH_DOCS documents of the benchmark corpus, invalid UTF-8
                              samples with their Python decoding, and the recipe of a 1 MiB text
  bench_vocab.txt             the BERT uncased vocabulary of make_corpus.py (30522 tokens)
  spm_trained.model           a SentencePiece unigram model trained on the benchmark corpus
  sentencepiece_expected.json ids and decodes from the `sentencepiece` library
  wordpiece_expected.json     ids and decodes from the `tokenizers` library (skipped without it;
                              tools/make_wordpiece_fixtures.mjs makes the same two files with the
                              library's npm package)
  bert_unicode_probe.json     what the `tokenizers` BERT normalizer and pre-tokenizer do to each
                              code point (skipped without it)

Usage, from the repository root:
  python3 tools/make_tokenizer_fixtures.py OUT_DIR --bench .device/bench
where --bench holds make_corpus.py and peers/make_random_models.py. The models it reads are
tests/data/text/t5-small/spiece.model and tests/data/text/all-MiniLM-L6-v2/tokenizer.json.
Deterministic: the same library versions give the same files.
"""
import argparse
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

BENCH_DOCS = 200
TRAIN_DOCS = 2000
MAX_LENGTH = 16  # truncation case
MIB_BYTES = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "text")

HARD_TEXTS = [
    # Empty and whitespace.
    "", " ", "   ", "\t\n\r", "\u00a0", "\u3000", " \u2028 \u2029 ", "a    b", "  leading",
    "trailing   ", "a\t\tb\n\nc\r\nd", "a \u3000 b\u00a0c\u202fd\u205fe\u1680f\u2000g\u200ah",
    # NUL, control and format characters.
    "a\x00b", "\x00", "\x01\x02\x03 text \x7f", "x\x0by\x0cz", "\x1c\x1d\x1e\x1f sep", "a\u0085b",
    "nel\u0085line", "\x80\x9f c1 controls", "foo\u200bbar", "\u200b", "a\u200cb\u200dc",
    "a\u2060b", "\ufeffbom", "soft\u00adhyphen", "\u200e\u200fmarks\u202a\u202c",
    "\ufffd replacement \ufffd", "\ue000 private \U000f0000 use",
    # Emoji with modifiers, ZWJ sequences, flags, keycaps.
    "👍", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "❤️ love", "🇺🇸🇫🇷 flags", "1️⃣ keycap",
    "🥲 🫠 🫨 🐦‍🔥 new emoji", "emoji🙂inside🙃words", "🧑🏿‍💻 coder",
    # Combining marks and normalization.
    "e\u0301", "Cafe\u0301 café CAFÉ", "a\u0316\u0301b", "a\u0301\u0316b", "\u0345", "ab \u0345 ab",
    "Z̸̢̛̛a̴̢l̷g̶o̵ text", "ǅ ǈ ǋ titlecase", "ﬁ ﬂ ligatures", "Å Ω K signs", "Ångström",
    "naïve coöperate résumé", "Ünïcödé ÀÉÎÕÜ", "ṩ ậ ḝ stacked", "\u1e9b\u0323",
    "İstanbul İ", "ẞ straße", "ΟΔΟΣ σοφός", "ı dotless", "ΑΘΗΝΑ МОСКВА",
    # Right-to-left scripts.
    "مرحبا بالعالم", "مَرْحَبًا", "שָׁלוֹם עוֹלָם", "abc \u200fמימין\u200e def", "١٢٣ ٤٥٦",
    # CJK and other scripts.
    "你好，世界！", "こんにちは世界、カタカナ。", "안녕하세요 세계", "𠀀𠀁𠀂 ext B", "豈 更 車 compat",
    "ＡＢＣ１２３！ fullwidth", "中文English混合text", "สวัสดีครับ ภาษาไทย", "नमस्ते दुनिया", "வணக்கம்",
    "ᠮᠣᠩᠭᠣᠯ ᠅", "𞤀𞤢𞤤 adlam", "\u08d4\u08d5 arabic marks", "\u2e43 dash", "ꙮ multiocular",
    "Hello Привет مرحبا 你好 こんにちは 안녕 สวัสดี",
    # Words of more than 100 characters.
    "a" * 100, "a" * 101, "b" * 150, "supercalifragilisticexpialidocious" * 4, "é" * 101,
    "1234567890" * 11, "x" * 99 + "\u0301", ("word " * 30).strip(), "ab" + "\u0301" * 120,
    # Punctuation and symbols.
    "Hello, world! (test) [x] {y} <z> @#$%^&*", "«quote» „x“ — – … ¿¡ ‼ ⁉ ‰", "§¶† ‡ •",
    "€100 £5 ¥3 ₹7 $", "∑∞≠ ≤ ±", "don't can't won't I'm", "end. end? end! end,",
    "https://example.com/a?b=c&d=e#f", "user@example.com", "def f(x): return x**2",
    "C++ std::vector<int>", "snake_case and kebab-case", "#hashtag @mention",
    # Special tokens in the text.
    "[CLS] hello [SEP] world [MASK]", "[PAD][UNK]", "[cls] lower", "x[SEP]y", "[SEP", "[[SEP]]",
    "</s> <pad> <unk> <s>", "<extra_id_0> <sep> [URL]", "a<sep>b[URL]c",
    # Ordinary text.
    "The quick brown fox jumps over the lazy dog.",
    "Tokenizers split text into pieces; models see ids.",
]

# Code points the random strings draw from: every script above, whitespace, controls, marks.
RANDOM_POOL = (
    [chr(c) for c in range(0x20, 0x7F)] * 3
    + list(" \t\n\r\u00a0\u3000\u2028\x00\x01\x1f\x7f\x85\u200b\u200d\ufeff\ufffd")
    + [chr(c) for c in range(0xC0, 0x180)]
    + [chr(c) for c in range(0x300, 0x370)]
    + [chr(c) for c in range(0x391, 0x3CA)]
    + [chr(c) for c in range(0x410, 0x450)]
    + [chr(c) for c in range(0x5D0, 0x5EB)]
    + [chr(c) for c in range(0x620, 0x660)]
    + [chr(c) for c in range(0x900, 0x970)]
    + [chr(c) for c in range(0xE01, 0xE5C)]
    + [chr(c) for c in range(0x3041, 0x3097)]
    + [chr(c) for c in range(0x4E00, 0x4E80)]
    + [chr(c) for c in range(0xAC00, 0xAC40)]
    + [chr(c) for c in range(0xFF01, 0xFF5F)]
    + [chr(c) for c in range(0x1F300, 0x1F340)]
    + list("\U0001f3fb\U0001f3ff\u200d\ufe0f\u2e43\u08d4\u0130\u1e9e\u212b")
)

# Bytes that are not UTF-8, and what Python makes of them.
INVALID_UTF8 = [
    b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xe1\x80", b"\xe1\x80A", b"\xed\xa0\x80",
    b"\xf0\x90\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"caf\xe9 cr\xe8me",
    b"\x80\x80 hello \xbf", b"ok\xf0\x9f\x98", b"\xf0\x9f\x98\x80 ok \xf0\x9f", b"\xc2", b"a\xc2b",
    b"\xe2\x82\xac\xe2\x82 \xe2",
]

# A text of at least MIB_BYTES UTF-8 bytes: snippets picked by a 64-bit LCG, each followed by a
# space. tests/text/reference_fixtures.h builds the same text.
MIB_SNIPPETS = [
    "the", "quick", "brown", "fox", "Tokenizer", "café", "naïve", "İstanbul", "你好", "世界",
    "こんにちは", "안녕", "สวัสดี", "مرحبا", "שָׁלוֹם", "👍🏽", "👨‍👩‍👧", "e\u0301", "\u200b", "\u00a0",
    "\t", "\x00", "[SEP]", "don't", "1234", "...", "«»", "a" * 120, "x" * 101, "ǅ",
]
LCG_SEED = 20261123


def mib_text():
    state, parts, size = LCG_SEED, [], 0
    while size < MIB_BYTES:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        snippet = MIB_SNIPPETS[(state >> 33) % len(MIB_SNIPPETS)] + " "
        parts.append(snippet)
        size += len(snippet.encode("utf-8"))
    return "".join(parts)


def fnv1a64(ids):
    """FNV-1a over the ids as little-endian 32-bit integers, as hex."""
    h = 0xCBF29CE484222325
    for i in ids:
        for b in (i & 0xFFFFFFFF).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) % (1 << 64)
    return "%016x" % h


def summary(ids):
    return {"count": len(ids), "fnv1a64": fnv1a64(ids), "first": ids[:64], "last": ids[-64:]}


def random_texts(n=150, seed=7):
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        length = rng.choice([0, 1, 2, 5, 10, 20, 40, 80])
        texts.append("".join(rng.choice(RANDOM_POOL) for _ in range(length)))
    return texts


def add_to_ranges(ranges, c):
    """Appends code point `c` (ascending) to a list of [first, last] ranges."""
    if ranges and ranges[-1][1] == c - 1:
        ranges[-1][1] = c
    else:
        ranges.append([c, c])


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_corpus(bench, out_dir, tmp):
    subprocess.run([sys.executable, os.path.join(bench, "make_corpus.py"), tmp, "--docs", str(TRAIN_DOCS)],
                   check=True)
    shutil.copy(os.path.join(tmp, "vocab.txt"), os.path.join(out_dir, "bench_vocab.txt"))
    docs = open(os.path.join(tmp, "corpus.txt"), encoding="utf-8").read().split("\n")[:BENCH_DOCS]
    corpus = {
        "hard": HARD_TEXTS,
        "random": random_texts(),
        "bench": docs,
        "invalid_utf8": [{"hex": b.hex(), "decoded": b.decode("utf-8", errors="replace")}
                         for b in INVALID_UTF8],
        "mib": {"snippets": MIB_SNIPPETS, "seed": LCG_SEED, "bytes": MIB_BYTES},
        "max_length": MAX_LENGTH,
    }
    with open(os.path.join(out_dir, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False, indent=0)
    return corpus


def cases(corpus):
    """(name, texts, full ids kept?) groups; the bench documents keep hashes only."""
    return [("hard", corpus["hard"], True), ("random", corpus["random"], True),
            ("bench", corpus["bench"], False)]


def encode_groups(encode, corpus):
    """Ids per group: with and without special tokens, and truncated at MAX_LENGTH."""
    result = {}
    for name, texts, full in cases(corpus):
        special = encode(texts, True, None)
        group = {"special": special if full else [[len(x), fnv1a64(x)] for x in special]}
        if full:
            group["plain"] = encode(texts, False, None)
        group["truncated"] = encode(texts, True, MAX_LENGTH)
        result[name] = group
    result["mib"] = summary(encode([mib_text()], True, None)[0])
    return result


def wordpiece(corpus, bench, out_dir):
    import tokenizers
    from tokenizers import Tokenizer

    def encoder(tk):
        tk.no_padding()

        def encode(texts, special, max_length):
            if max_length:
                tk.enable_truncation(max_length=max_length)
            else:
                tk.no_truncation()
            return [e.ids for e in tk.encode_batch(texts, add_special_tokens=special)]
        return encode

    models = load_module(os.path.join(bench, "peers", "make_random_models.py"), "make_random_models")
    bench_tk = models.bert_tokenizer(os.path.join(out_dir, "bench_vocab.txt")).backend_tokenizer
    minilm_tk = Tokenizer.from_file(os.path.join(DATA, "all-MiniLM-L6-v2", "tokenizer.json"))
    expected = {"reference": "tokenizers " + tokenizers.__version__}
    for name, tk in [("bench_vocab", bench_tk), ("minilm", minilm_tk)]:
        entry = encode_groups(encoder(tk), corpus)
        tk.no_truncation()
        ids = [e.ids for e in tk.encode_batch(corpus["hard"], add_special_tokens=True)]
        entry["decoded"] = tk.decode_batch(ids, skip_special_tokens=True)
        entry["decoded_with_special"] = tk.decode_batch(ids, skip_special_tokens=False)
        expected[name] = entry
    with open(os.path.join(out_dir, "wordpiece_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))

    # Every code point through each step of the BERT normalizer and pre-tokenizer.
    from tokenizers import normalizers, pre_tokenizers
    lower = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    probe = {"reference": "tokenizers " + tokenizers.__version__, "lowercase": {}, "strip_accents": {},
             "clean_text": {"removed": [], "space": [], "padded": [], "other": {}},
             "punctuation": [], "whitespace": []}
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        s = chr(c)
        for key, normalizer in (("lowercase", lower), ("strip_accents", strip)):
            if key == "strip_accents" and 0xAC00 <= c <= 0xD7A3:
                continue  # Hangul syllables decompose algorithmically; the corpus covers them
            out = normalizer.normalize_str(s)
            if out != s:
                probe[key]["%x" % c] = [ord(x) for x in out]
        out = clean.normalize_str(s)
        kind = {"": "removed", " ": "space", " " + s + " ": "padded"}.get(out)
        if kind:
            add_to_ranges(probe["clean_text"][kind], c)
        elif out != s:
            probe["clean_text"]["other"]["%x" % c] = [ord(x) for x in out]
        pieces = pre.pre_tokenize_str("a" + s + "a")
        if len(pieces) == 3:
            add_to_ranges(probe["punctuation"], c)
        elif len(pieces) == 2:
            add_to_ranges(probe["whitespace"], c)
    with open(os.path.join(out_dir, "bert_unicode_probe.json"), "w", encoding="utf-8") as f:
        json.dump(probe, f, separators=(",", ":"))


def sentencepiece_refs(corpus, out_dir, tmp):
    import sentencepiece as spm
    # The model records its input and prefix: relative paths keep it the same from run to run.
    cwd = os.getcwd()
    os.chdir(tmp)
    train, prefix = "corpus.txt", "spm_trained"
    # Identity normalization and no whitespace collapsing keep the file small and take the
    # branches that t5-small (nmt_nfkc, collapsing) does not; user-defined symbols too.
    spm.SentencePieceTrainer.train(
        input=train, model_prefix=prefix, vocab_size=3000, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, user_defined_symbols=["<sep>", "[URL]"],
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        character_coverage=0.9995, num_threads=1, shuffle_input_sentence=False,
        minloglevel=2)
    os.chdir(cwd)
    shutil.copy(os.path.join(tmp, prefix + ".model"), os.path.join(out_dir, "spm_trained.model"))
    expected = {"reference": "sentencepiece " + spm.__version__}
    models = [("trained", os.path.join(out_dir, "spm_trained.model")),
              ("t5_small", os.path.join(DATA, "t5-small", "spiece.model"))]
    for name, path in models:
        sp = spm.SentencePieceProcessor(model_file=path)
        eos = sp.eos_id()

        def encode(texts, special, max_length):
            rows = [sp.encode(t) for t in texts]
            if max_length:  # as T5TokenizerFast truncates: the text's ids, then </s>
                rows = [r[:max_length - 1] for r in rows]
            return [r + [eos] if special else r for r in rows]
        entry = encode_groups(encode, corpus)
        ids = [sp.encode(t) + [eos] for t in corpus["hard"]]
        entry["decoded_with_special"] = [sp.decode(r) for r in ids]
        entry["decoded"] = [sp.decode([i for i in r if not sp.is_control(i) and not sp.is_unknown(i)])
                            for r in ids]
        entry["pieces"] = sp.get_piece_size()
        expected[name] = entry
    with open(os.path.join(out_dir, "sentencepiece_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--bench", required=True, help="folder with make_corpus.py and peers/")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(args.bench, args.out_dir, tmp)
        sentencepiece_refs(corpus, args.out_dir, tmp)
        try:
            import tokenizers  # noqa: F401
        except ImportError:
            print("tokenizers is not installed: no WordPiece references", file=sys.stderr)
            return
        wordpiece(corpus, args.bench, args.out_dir)
    print(json.dumps({"wrote": sorted(os.listdir(args.out_dir))}))


if __name__ == "__main__":
    main()
