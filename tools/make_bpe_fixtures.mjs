#!/usr/bin/env node
// Byte-level BPE and Unigram tokenizers trained with the `tokenizers` library on the benchmark
// corpus, and the ids that library gives for the corpus of tests/data/text/corpus.json. Writes
// into OUT_DIR (tests/data/text):
//   bpe/tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
//                          RoBERTa's layout: <s>=0 <pad>=1 </s>=2 <unk>=3, the 256 byte
//                          characters, the first MERGES merges, <mask> last (lstrip), and
//                          `<s> ... </s>` through RobertaProcessing
//   bpe_prefix/tokenizer.json  the same model with add_prefix_space, TemplateProcessing and two
//                          more added tokens: `<sep>` (rstrip) and `[URL]` (single_word)
//   unigram/tokenizer.json a Unigram model (XLM-R's layout of special tokens, the UNIGRAM_PIECES
//                          best pieces and every single character) behind NFKC, runs of spaces
//                          made one, Metaspace, and `<s> ... </s>`
//   bpe_expected.json      ids and decodes for the three, and for t5-small/tokenizer.json
// The training text is the benchmark corpus (make_corpus.py) plus the hard and random texts,
// so that merges and pieces of other scripts exist too.
//
// Usage, from the repository root:
//   npm install --prefix /tmp/hf tokenizers@0.23.2
//   NODE_PATH=/tmp/hf/node_modules node tools/make_bpe_fixtures.mjs tests/data/text PATH/TO/bench
// tools/make_bpe_fixtures.py checks these files with Python's `tokenizers` and `transformers`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

import { groups, readCorpus } from './hf_fixture_helpers.mjs';

const require = createRequire(import.meta.url);
const t = require('tokenizers');
const [outDir, benchDir] = process.argv.slice(2);
const MERGES = 4000;
const UNIGRAM_PIECES = 3000;
const version = JSON.parse(fs.readFileSync(require.resolve('tokenizers/package.json'), 'utf8')).version;
const corpus = readCorpus(outDir);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bpe-fixtures-'));
execFileSync('python3', [path.join(benchDir, 'make_corpus.py'), tmp, '--docs', '2000']);
const extra = path.join(tmp, 'extra.txt');
fs.writeFileSync(extra, Array(20).fill([...corpus.hard, ...corpus.random].join('\n')).join('\n'));
const trainFiles = [path.join(tmp, 'corpus.txt'), extra];

function trained(model, setup) {
  const tk = new t.Tokenizer(model);
  setup(tk);
  tk.train(trainFiles);
  const file = path.join(tmp, 'trained.json');
  tk.save(file);
  return JSON.parse(fs.readFileSync(file, 'utf8')).model;
}

const write = (dir, name, value) => {
  fs.mkdirSync(path.join(outDir, dir), { recursive: true });
  fs.writeFileSync(path.join(outDir, dir, name), typeof value === 'string' ? value : JSON.stringify(value));
};
const added = (id, content, flags = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...flags,
});

// BPE: RoBERTa's layout over the first MERGES merges.
const bpeModel = trained(t.BPE.empty(), (tk) => tk.setPreTokenizer(t.byteLevelPreTokenizer(false, true)));
const merges = bpeModel.merges.slice(0, MERGES);
const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
const addToken = (token) => { if (!(token in vocab)) vocab[token] = Object.keys(vocab).length; };
for (const c of t.byteLevelAlphabet().sort((a, b) => a.codePointAt(0) - b.codePointAt(0))) addToken(c);
for (const [a, b] of merges) addToken(a + b);
addToken('<mask>');
const specials = [added(0, '<s>'), added(1, '<pad>'), added(2, '</s>'), added(3, '<unk>'),
                  added(vocab['<mask>'], '<mask>', { lstrip: true })];
const bpe = {
  version: '1.0', truncation: null, padding: null, added_tokens: specials, normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true,
                    add_prefix_space: false },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
           fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
};
write('bpe', 'tokenizer.json', bpe);
write('bpe', 'vocab.json', vocab);
write('bpe', 'merges.txt', ['#version: 0.2', ...merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n');
const mask = { content: '<mask>', lstrip: true, normalized: false, rstrip: false, single_word: false, special: true };
write('bpe', 'special_tokens_map.json', {
  bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', sep_token: '</s>', pad_token: '<pad>',
  cls_token: '<s>', mask_token: mask });
write('bpe', 'tokenizer_config.json', {
  tokenizer_class: 'RobertaTokenizer', add_prefix_space: false, model_max_length: 512, errors: 'replace',
  bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', sep_token: '</s>', pad_token: '<pad>',
  cls_token: '<s>', mask_token: '<mask>', clean_up_tokenization_spaces: false,
  added_tokens_decoder: Object.fromEntries(specials.map(({ id, ...rest }) => [String(id), rest])) });

const prefixed = structuredClone(bpe);
prefixed.pre_tokenizer.add_prefix_space = true;
prefixed.post_processor = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
           { SpecialToken: { id: '</s>', type_id: 0 } }],
  pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
};
const next = Object.keys(vocab).length;
prefixed.added_tokens.push(added(next, '<sep>', { rstrip: true, special: false }),
                           added(next + 1, '[URL]', { single_word: true, special: false }));
write('bpe_prefix', 'tokenizer.json', prefixed);

// Unigram: XLM-R's special tokens, the best pieces and every character.
const uniModel = trained(t.Unigram.empty(), (tk) => {
  tk.setNormalizer(t.nfkcNormalizer());
  tk.setPreTokenizer(t.metaspacePreTokenizer('▁', 'always', true));
});
const byScore = [...uniModel.vocab].sort((a, b) => b[1] - a[1]);
const pieces = byScore.filter(([p], i) => i < UNIGRAM_PIECES || [...p].length === 1);
const uniVocab = [['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...pieces, ['<mask>', 0]];
const uniMask = uniVocab.length - 1;
const unigram = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [added(0, '<s>'), added(1, '<pad>'), added(2, '</s>'), added(3, '<unk>'),
                 added(uniMask, '<mask>', { lstrip: true })],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
  pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '</s>', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
  },
  decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
  model: { type: 'Unigram', unk_id: 3, vocab: uniVocab, byte_fallback: false },
};
write('unigram', 'tokenizer.json', unigram);
write('unigram', 'tokenizer_config.json', { tokenizer_class: 'XLMRobertaTokenizer', model_max_length: 512 });

const expected = { reference: `tokenizers ${version} (npm)` };
for (const [name, file] of [['bpe', 'bpe/tokenizer.json'], ['bpe_prefix', 'bpe_prefix/tokenizer.json'],
                            ['unigram', 'unigram/tokenizer.json'], ['t5_small', 't5-small/tokenizer.json']]) {
  expected[name] = await groups(t.Tokenizer.fromFile(path.join(outDir, file)), corpus);
}
fs.writeFileSync(path.join(outDir, 'bpe_expected.json'), JSON.stringify(expected));
fs.rmSync(tmp, { recursive: true });
