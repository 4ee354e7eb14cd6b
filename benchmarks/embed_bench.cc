// embed_bench: how fast one GPU turns a corpus of strings into normalized vectors, next to
// sentence-transformers on the same GPU in the same run.
//
//   embed_bench --model DIR --corpus corpus.txt [--device cuda:0] [--dtype float16]
//               [--max-batch-tokens 16384] [--repeat 3] [--peer "COMMAND"]
//
// Timed: tokenization and the model, from strings to normalized float32 vectors on the host,
// after a warm-up. COMMAND is run through the shell after ours, and its JSON lines with
// "docs_per_s" and "tok_per_s" (benchmarks/peers or .device/bench/peers/st_embed.py) give the
// ratios. Prints JSON lines, then a table.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "benchmarks/peer.h"
#include "modelpool/managers/embedding_model_manager.h"
#include "modelpool/text/tokenizer.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, device, "cuda:0", "cpu or cuda:N");
ABSL_FLAG(std::string, dtype, "float16", "float32, float16 or bfloat16");
ABSL_FLAG(int64_t, max_batch_tokens, 16384, "the most tokens one batch holds");
ABSL_FLAG(int64_t, repeat, 3, "timed runs; the median is reported");
ABSL_FLAG(std::string, peer, "", "a command whose JSON lines give the peer's figures");

namespace {

struct Args {
  std::string model, corpus, peer;
  modelpool::Device device = modelpool::Device::Cuda(0);
  modelpool::DType dtype = modelpool::DType::kFloat16;
  int64_t max_batch_tokens = 16384;
  int repeat = 3;
  std::vector<std::string> texts;  // the corpus
};

Args ParseArgs(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv,
                                   "embed_bench --model DIR --corpus FILE [--device cuda:0] "
                                   "[--dtype float16] [--max-batch-tokens N] [--repeat N] "
                                   "[--peer COMMAND]");
  Args args{.model = modelpool::cli::Required(FLAGS_model),
            .corpus = modelpool::cli::Required(FLAGS_corpus),
            .peer = absl::GetFlag(FLAGS_peer),
            .device = modelpool::cli::DeviceOf(FLAGS_device),
            .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
            .max_batch_tokens = modelpool::cli::InRange(FLAGS_max_batch_tokens, 1, 1 << 24),
            .repeat = static_cast<int>(modelpool::cli::InRange(FLAGS_repeat, 1, 1000))};
  args.texts = modelpool::bench::ReadCorpus(args.corpus);
  return args;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  const std::vector<std::string>& texts = args.texts;

  modelpool::Settings settings;
  settings.devices = {args.device};
  settings.force_cpu = !args.device.is_cuda();
  settings.max_instances = 1;
  auto manager =
      modelpool::EmbeddingModelManager::Create({.model_dir = args.model,
                                                .dtype = args.dtype,
                                                .max_batch_tokens = args.max_batch_tokens,
                                                .settings = settings});
  if (!manager.ok()) modelpool::cli::Fail(manager.status());
  const auto load_start = std::chrono::steady_clock::now();
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) modelpool::cli::Fail(lease.status());
  const double load_s = SecondsSince(load_start);
  const std::vector<std::string> warm_up(texts.begin(),
                                         texts.begin() + std::min<size_t>(1024, texts.size()));
  if (auto out = (*lease)->Embed(warm_up, {.normalize = true}); !out.ok())
    modelpool::cli::Fail(out.status());

  // Where the time goes: tokenizing alone, on the same cores.
  auto tokenizer = modelpool::LoadTokenizer(args.model);
  if (!tokenizer.ok()) modelpool::cli::Fail(tokenizer.status());
  const auto tokenize_start = std::chrono::steady_clock::now();
  const modelpool::EncodedBatch encoded =
      (*tokenizer)
          ->EncodeBatch(texts, {.max_length = static_cast<int>((*lease)->max_seq_length())});
  const double tokenize_s = SecondsSince(tokenize_start);

  std::vector<double> runs;
  int64_t tokens = 0;
  for (int r = 0; r < args.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto out = (*lease)->Embed(texts, {.normalize = true});
    runs.push_back(SecondsSince(start));
    if (!out.ok()) modelpool::cli::Fail(out.status());
    tokens = out->num_tokens;
  }
  std::sort(runs.begin(), runs.end());
  const double ours_s = runs[runs.size() / 2];
  const double docs_per_s = texts.size() / ours_s, tok_per_s = tokens / ours_s;
  absl::PrintF(
      "{\"what\": \"modelpool_embed\", \"device\": \"%s\", \"dtype\": \"%s\", "
      "\"max_batch_tokens\": %d, \"docs\": %d, \"tokens\": %d, \"load_s\": %.3f, "
      "\"tokenize_s\": %.4f, \"median_s\": %.4f, \"best_s\": %.4f, \"docs_per_s\": %.1f, "
      "\"tok_per_s\": %.0f}\n",
      args.device.ToString(), modelpool::DTypeName(args.dtype), args.max_batch_tokens, texts.size(),
      tokens, load_s, tokenize_s, ours_s, runs.front(), docs_per_s, tok_per_s);
  std::fflush(stdout);
  lease->Release();
  manager->reset();  // frees the GPU for the peer

  std::optional<nlohmann::json> peer;
  if (!args.peer.empty()) {
    const modelpool::bench::PeerOutput output = modelpool::bench::RunPeer(args.peer);
    for (const nlohmann::json& line : output.lines) {
      absl::PrintF("%s\n", line.dump());
      if (!peer.has_value() && line.contains("docs_per_s") && line.contains("tok_per_s"))
        peer = line;
    }
    modelpool::bench::CheckPeerSucceeded(output, args.peer);
  }

  absl::PrintF("\n%-44s %12s %12s\n", "", "docs/s", "tokens/s");
  absl::PrintF("%-44s %12.0f %12.0f\n", "modelpool (" + args.device.ToString() + ")", docs_per_s,
               tok_per_s);
  if (peer.has_value()) {
    const double peer_docs = (*peer)["docs_per_s"].get<double>();
    const double peer_tok = (*peer)["tok_per_s"].get<double>();
    const std::string name = peer->value("peer", std::string("peer")) + " batch " +
                             std::to_string(peer->value("batch_size", 0));
    absl::PrintF("%-44s %12.0f %12.0f\n", name.substr(0, 44), peer_docs, peer_tok);
    absl::PrintF("%-44s %11.2fx %11.2fx\n", "ours / theirs", docs_per_s / peer_docs,
                 tok_per_s / peer_tok);
  }
  absl::PrintF("tokenizing alone: %.3f s of %.3f s (%d ids)\n", tokenize_s, ours_s,
               encoded.num_tokens());
  return 0;
}
