#!/usr/bin/env node
// wordpiece_expected.json and bert_unicode_probe.json as tools/make_tokenizer_fixtures.py
// writes them, from the npm package of the same `tokenizers` library (its Rust core, through
// Node bindings), for machines without the Python package. Reads OUT_DIR/corpus.json and
// OUT_DIR/bench_vocab.txt, which the Python script writes first.
//
// Usage, from the repository root:
//   npm install --prefix /tmp/hf tokenizers@0.23.2
//   NODE_PATH=/tmp/hf/node_modules node tools/make_wordpiece_fixtures.mjs tests/data/text
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import { groups } from './hf_fixture_helpers.mjs';

const require = createRequire(import.meta.url);
const t = require('tokenizers');
const outDir = process.argv[2];
const dataDir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'tests', 'data', 'text');
const version = JSON.parse(fs.readFileSync(require.resolve('tokenizers/package.json'), 'utf8')).version;
const corpus = JSON.parse(fs.readFileSync(path.join(outDir, 'corpus.json'), 'utf8'));

// As make_random_models.bert_tokenizer builds it, with the special tokens that
// PreTrainedTokenizerFast adds.
const words = fs.readFileSync(path.join(outDir, 'bench_vocab.txt'), 'utf8').split('\n').filter((w) => w);
const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
const bench = new t.Tokenizer(t.WordPiece.init(vocab, { unkToken: '[UNK]', maxInputCharsPerWord: 100 }));
bench.setNormalizer(t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
bench.setPreTokenizer(t.bertPreTokenizer());
bench.setPostProcessor(t.templateProcessing('[CLS] $A [SEP]', '[CLS] $A [SEP] $B:1 [SEP]:1',
                                            [['[CLS]', vocab['[CLS]']], ['[SEP]', vocab['[SEP]']]]));
bench.setDecoder(t.wordPieceDecoder('##', true));
bench.addSpecialTokens(['[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]']);
const minilm = t.Tokenizer.fromFile(path.join(dataDir, 'all-MiniLM-L6-v2', 'tokenizer.json'));
minilm.disablePadding();

const expected = { reference: `tokenizers ${version} (npm)` };
for (const [name, tk] of [['bench_vocab', bench], ['minilm', minilm]]) {
  expected[name] = await groups(tk, corpus);
}
fs.writeFileSync(path.join(outDir, 'wordpiece_expected.json'), JSON.stringify(expected));

const lower = t.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true });
const strip = t.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
const clean = t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: false, lowercase: false });
const pre = t.bertPreTokenizer();
const probe = { reference: `tokenizers ${version} (npm)`, lowercase: {}, strip_accents: {},
                clean_text: { removed: [], space: [], padded: [], other: {} }, punctuation: [], whitespace: [] };
// Appends code point `c` (ascending) to a list of [first, last] ranges.
const addToRanges = (ranges, c) => {
  if (ranges.length && ranges[ranges.length - 1][1] === c - 1) ranges[ranges.length - 1][1] = c;
  else ranges.push([c, c]);
};
const codePoints = (s) => [...s].map((x) => x.codePointAt(0));
for (let c = 0; c < 0x110000; ++c) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  const s = String.fromCodePoint(c);
  for (const [key, normalizer] of [['lowercase', lower], ['strip_accents', strip]]) {
    if (key === 'strip_accents' && c >= 0xac00 && c <= 0xd7a3) continue;
    const out = normalizer.normalizeString(s);
    if (out !== s) probe[key][c.toString(16)] = codePoints(out);
  }
  const out = clean.normalizeString(s);
  const kind = { '': 'removed', ' ': 'space', [' ' + s + ' ']: 'padded' }[out];
  if (kind) addToRanges(probe.clean_text[kind], c);
  else if (out !== s) probe.clean_text.other[c.toString(16)] = codePoints(out);
  const pieces = pre.preTokenizeString('a' + s + 'a');
  if (pieces.length === 3) addToRanges(probe.punctuation, c);
  else if (pieces.length === 2) addToRanges(probe.whitespace, c);
}
fs.writeFileSync(path.join(outDir, 'bert_unicode_probe.json'), JSON.stringify(probe));
