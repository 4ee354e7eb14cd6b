// What the fixture scripts that run the npm package of `tokenizers` share: the ids of the
// corpus groups (tests/data/text/corpus.json) in the layout tests/text/reference_check.h reads.
import fs from 'node:fs';
import path from 'node:path';

export function fnv1a64(ids) {
  let h = 0xcbf29ce484222325n;
  for (const id of ids) {
    const v = BigInt(id >>> 0);
    for (let k = 0n; k < 4n; ++k) {
      h ^= (v >> (8n * k)) & 0xffn;
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, '0');
}

export function readCorpus(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'corpus.json'), 'utf8'));
}

// The 1 MiB text of make_tokenizer_fixtures.mib_text.
export function mibText(corpus) {
  const { snippets, seed, bytes } = corpus.mib;
  let state = BigInt(seed);
  const parts = [];
  for (let size = 0; size < bytes;) {
    state = (state * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    const snippet = snippets[Number((state >> 33n) % BigInt(snippets.length))] + ' ';
    parts.push(snippet);
    size += Buffer.byteLength(snippet, 'utf8');
  }
  return parts.join('');
}

export async function encode(tk, texts, special, maxLength) {
  if (maxLength) tk.setTruncation(maxLength);
  else tk.disableTruncation();
  const rows = [];
  for (const text of texts) rows.push((await tk.encode(text, null, { addSpecialTokens: special })).getIds());
  return rows;
}

// Ids per group, with and without special tokens and truncated; the benchmark documents as
// counts and hashes, the 1 MiB text as a summary; decodes of the hard texts.
export async function groups(tk, corpus) {
  tk.disablePadding();
  const result = {};
  for (const [name, full] of [['hard', true], ['random', true], ['bench', false]]) {
    const special = await encode(tk, corpus[name], true, 0);
    const group = { special: full ? special : special.map((ids) => [ids.length, fnv1a64(ids)]) };
    if (full) group.plain = await encode(tk, corpus[name], false, 0);
    group.truncated = await encode(tk, corpus[name], true, corpus.max_length);
    result[name] = group;
  }
  const ids = (await encode(tk, [mibText(corpus)], true, 0))[0];
  result.mib = { count: ids.length, fnv1a64: fnv1a64(ids), first: ids.slice(0, 64), last: ids.slice(-64) };
  tk.disableTruncation();
  const hard = await encode(tk, corpus.hard, true, 0);
  result.decoded = await tk.decodeBatch(hard, true);
  result.decoded_with_special = await tk.decodeBatch(hard, false);
  return result;
}
