// How fast does an encoder-decoder (T5, BART) summarize next to transformers' generate() on the
// same GPU?
//
//   generate_bench --model /tmp/models/t5-large --corpus /tmp/corpus/corpus.txt
//       --peer "python3 tools/hf_generate_peer.py /tmp/models/t5-large /tmp/corpus/corpus.txt"
//
// The inputs are the `--batch` longest documents, with the folder's summarization prefix
// ("summarize: " for T5, none for BART) and cut at `--input-tokens` tokens; every text gets
// exactly `--new-tokens` tokens (min = max), so the time does not depend on the random
// weights; other settings are the folder's. Cases as the peer's: batch 1 greedy (latency),
// then the batch greedy and with 4 beams, each timed `--repeat` times after a warm-up, the
// median reported. The peer runs first, before our model takes memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "benchmarks/peer.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "modelpool/text/tokenizer.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, peer, "", "a command whose JSON lines give the peer's figures");
ABSL_FLAG(std::string, dtype, "bfloat16", "bfloat16 or float32");
ABSL_FLAG(int64_t, batch, 32, "texts per batch: the longest documents of the corpus");
ABSL_FLAG(int64_t, input_tokens, 512, "input tokens per text");
ABSL_FLAG(int64_t, new_tokens, 64, "generated tokens per text");
ABSL_FLAG(int64_t, repeat, 3, "timed runs of each case; the median is reported");

namespace modelpool {
namespace {

struct Args {
  std::string model, corpus, peer;
  DType dtype = DType::kBFloat16;
  int batch = 32;
  int input_tokens = 512;
  int new_tokens = 64;
  int repeat = 3;
  std::vector<std::string> docs;  // the corpus
};

// What Summarize() puts before a text of this folder: config.json's summarization prefix, else
// T5's "summarize: ", else none (as tools/seq2seq_inputs.py, which the peer uses).
std::string SummarizationPrefix(const std::string& model_dir) {
  std::ifstream in(model_dir + "/config.json");
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return "";
  const nlohmann::json::json_pointer where("/task_specific_params/summarization/prefix");
  if (config.contains(where) && config.at(where).is_string()) {
    return config.at(where).get<std::string>();
  }
  const std::string type = config.value("model_type", "");
  return type == "t5" || type == "mt5" ? "summarize: " : "";
}

int Run(const Args& args) {
  // The peer first, on an idle GPU.
  std::map<std::pair<int, int>, double> theirs;  // (batch, beams) -> generated tokens/s
  if (!args.peer.empty()) {
    const bench::PeerOutput peer = bench::RunPeer(args.peer);
    bench::CheckPeerSucceeded(peer, args.peer);
    for (const nlohmann::json& line : peer.lines) {
      if (line.contains("gen_tok_per_s")) {
        theirs[{line.at("batch").get<int>(), line.at("beams").get<int>()}] =
            line.at("gen_tok_per_s").get<double>();
      }
    }
  }

  std::vector<std::string> docs = args.docs;
  std::stable_sort(docs.begin(), docs.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  docs.resize(std::min<size_t>(docs.size(), args.batch));

  Settings settings;
  settings.devices = {Device::Cuda(0)};
  settings.max_instances = 1;
  auto manager = SummarizationModelManager::Create({.model_dir = args.model,
                                                    .dtype = args.dtype,
                                                    .max_batch_size = args.batch,
                                                    .max_num_beams = 4,
                                                    .max_input_tokens = args.input_tokens,
                                                    .max_new_tokens = args.new_tokens,
                                                    .settings = settings});
  if (!manager.ok()) cli::Fail(manager.status());
  auto tokenizer = LoadTokenizer(args.model);
  if (!tokenizer.ok()) cli::Fail(tokenizer.status());
  EncodeOptions encode;
  encode.max_length = args.input_tokens;
  const std::string prefix = SummarizationPrefix(args.model);
  std::vector<std::vector<int32_t>> inputs;
  for (const std::string& doc : docs) inputs.push_back((*tokenizer)->Encode(prefix + doc, encode));

  const auto load_start = std::chrono::steady_clock::now();
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) cli::Fail(lease.status());
  std::printf("{\"what\": \"load\", \"s\": %.3f, \"instance_bytes\": %lld}\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count(),
              static_cast<long long>((*manager)->instance_bytes()));

  for (const auto& [batch, beams] :
       std::vector<std::pair<int, int>>{{1, 1}, {args.batch, 1}, {args.batch, 4}}) {
    const std::vector<std::vector<int32_t>> rows(
        inputs.begin(), inputs.begin() + std::min<size_t>(batch, inputs.size()));
    GenerationOptions options;
    options.num_beams = beams;
    options.max_new_tokens = args.new_tokens;
    options.min_new_tokens = args.new_tokens;
    if (auto warm = (*lease)->Generate(rows, options); !warm.ok()) cli::Fail(warm.status());
    std::vector<double> runs;
    for (int r = 0; r < args.repeat; ++r) {
      const auto start = std::chrono::steady_clock::now();
      auto ids = (*lease)->Generate(rows, options);
      runs.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (!ids.ok()) cli::Fail(ids.status());
    }
    std::sort(runs.begin(), runs.end());
    const double seconds = runs[runs.size() / 2];
    int64_t input_tokens = 0;
    for (const auto& row : rows) input_tokens += static_cast<int64_t>(row.size());
    const double ours = static_cast<double>(rows.size()) * args.new_tokens / seconds;
    const auto peer = theirs.find({static_cast<int>(rows.size()), beams});
    std::printf(
        "{\"what\": \"generate\", \"dtype\": \"%s\", \"batch\": %zu, \"beams\": %d, "
        "\"input_tokens\": %lld, \"new_tokens\": %d, \"median_s\": %.4f, \"best_s\": %.4f, "
        "\"gen_tok_per_s\": %.1f, "
        "\"peer_gen_tok_per_s\": %s, \"ratio\": %s}\n",
        std::string(DTypeName(args.dtype)).c_str(), rows.size(), beams,
        static_cast<long long>(input_tokens), args.new_tokens, seconds, runs.front(), ours,
        peer == theirs.end() ? "null" : absl::StrFormat("%.1f", peer->second).c_str(),
        peer == theirs.end() ? "null" : absl::StrFormat("%.2f", ours / peer->second).c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  using modelpool::cli::InRange;
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "generate_bench --model DIR --corpus CORPUS_TXT [--peer COMMAND] "
      "[--dtype bfloat16|float32] [--batch 32] [--input-tokens 512] "
      "[--new-tokens 64] [--repeat 3]");
  modelpool::Args args{.model = modelpool::cli::Required(FLAGS_model),
                       .corpus = modelpool::cli::Required(FLAGS_corpus),
                       .peer = absl::GetFlag(FLAGS_peer),
                       .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
                       .batch = static_cast<int>(InRange(FLAGS_batch, 1, 4096)),
                       .input_tokens = static_cast<int>(InRange(FLAGS_input_tokens, 2, 1 << 16)),
                       .new_tokens = static_cast<int>(InRange(FLAGS_new_tokens, 1, 1 << 16)),
                       .repeat = static_cast<int>(InRange(FLAGS_repeat, 1, 1000))};
  args.docs = modelpool::bench::ReadCorpus(args.corpus);
  return modelpool::Run(args);
}
