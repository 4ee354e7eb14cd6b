// The official OpenAI client for Node against modelpool-server: embeds the texts of a JSON file
// with encoding_format float and base64 and prints {"float": [[...]], "base64": [[...]]}.
//   node openai_client.cjs NODE_DIR BASE_URL API_KEY MODEL texts.json
// NODE_DIR is the folder whose node_modules holds the `openai` package.
const path = require('path');
const fs = require('fs');

async function main() {
  const [nodeDir, baseURL, apiKey, model, textsFile] = process.argv.slice(2);
  const OpenAI = require(path.join(nodeDir, 'node_modules', 'openai'));
  const client = new OpenAI({baseURL, apiKey, maxRetries: 0, timeout: 30000});
  const input = JSON.parse(fs.readFileSync(textsFile, 'utf8'));
  const result = {};
  for (const format of ['float', 'base64']) {
    const response = await client.embeddings.create({model, input, encoding_format: format});
    if (response.data.length !== input.length) throw new Error(`${format}: wrong row count`);
    result[format] = response.data.map((row) => {
      if (format === 'float') return row.embedding;
      // The client hands base64 back as it came: little-endian float32 bytes.
      const bytes = Buffer.from(row.embedding, 'base64');
      return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
    });
    result[`${format}_usage`] = response.usage;
  }
  // The client's default (no encoding_format) asks for base64 and decodes it itself.
  const plain = await client.embeddings.create({model, input});
  result.default = plain.data.map((row) => Array.from(row.embedding));
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  console.error(`openai_client: ${error.stack || error}`);
  process.exit(1);
});
