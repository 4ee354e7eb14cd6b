// worker_bench: does a WorkerPool spread one corpus over every GPU of the host, in one
// process? The corpus goes from strings to normalized vectors through WorkerPool::Embed on
// one GPU, then on all of them, next to sentence-transformers' multi-process pool on the same
// GPUs in the same run.
//
//   worker_bench --model DIR --corpus corpus.txt [--dtype float16] [--workers-per-device 1]
//                [--max-batch-tokens 16384] [--repeat 3] [--peer "COMMAND"]
//
// COMMAND (.device/bench/peers/st_embed.py MODEL CORPUS --batch-sizes 128) prints JSON lines;
// "st_encode" (one GPU) and "st_encode_pool" (all GPUs) give the ratios. Targets: all GPUs
// >= 1.9x one GPU, and >= 2x sentence-transformers' pool on the same GPUs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "benchmarks/peer.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/workers/worker_pool.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, dtype, "float16", "float32, float16 or bfloat16");
ABSL_FLAG(int64_t, workers_per_device, 1, "worker threads per GPU");
ABSL_FLAG(int64_t, max_batch_tokens, 16384, "the most tokens one batch holds");
ABSL_FLAG(int64_t, repeat, 3, "timed runs; the median is reported");
ABSL_FLAG(std::string, peer, "", "a command whose JSON lines give the peer's figures");

namespace {

struct Args {
  std::string model, corpus, peer;
  modelpool::DType dtype = modelpool::DType::kFloat16;
  int workers_per_device = 1;
  int64_t max_batch_tokens = 16384;
  int repeat = 3;
  std::vector<std::string> texts;  // the corpus
};

Args ParseArgs(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv,
                                   "worker_bench --model DIR --corpus FILE [--dtype float16] "
                                   "[--workers-per-device N] [--max-batch-tokens N] [--repeat N] "
                                   "[--peer COMMAND]");
  Args args{.model = modelpool::cli::Required(FLAGS_model),
            .corpus = modelpool::cli::Required(FLAGS_corpus),
            .peer = absl::GetFlag(FLAGS_peer),
            .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
            .workers_per_device =
                static_cast<int>(modelpool::cli::InRange(FLAGS_workers_per_device, 1, 1024)),
            .max_batch_tokens = modelpool::cli::InRange(FLAGS_max_batch_tokens, 1, 1 << 24),
            .repeat = static_cast<int>(modelpool::cli::InRange(FLAGS_repeat, 1, 1000))};
  args.texts = modelpool::bench::ReadCorpus(args.corpus);
  return args;
}

struct Measurement {
  int gpus = 0;
  double seconds = 0, docs_per_s = 0, tok_per_s = 0;
};

// Embeds `texts` through a WorkerPool on the first `gpus` GPUs; the median of `repeat` runs.
Measurement Measure(const Args& args, const std::vector<std::string>& texts, int gpus) {
  modelpool::Settings settings;
  for (int i = 0; i < gpus; ++i) settings.devices.push_back(modelpool::Device::Cuda(i));
  settings.max_instances = gpus * args.workers_per_device;
  modelpool::WorkerSettings workers;
  workers.workers_per_device = args.workers_per_device;
  auto manager =
      modelpool::EmbeddingModelManager::Create({.model_dir = args.model,
                                                .dtype = args.dtype,
                                                .max_batch_tokens = args.max_batch_tokens,
                                                .settings = settings});
  if (!manager.ok()) modelpool::cli::Fail(manager.status());
  std::shared_ptr<modelpool::EmbeddingModelManager> embedder(*std::move(manager));
  auto pool = modelpool::WorkerPool::Create({.settings = settings, .workers = workers});
  if (!pool.ok()) modelpool::cli::Fail(pool.status());
  if (auto s = (*pool)->RegisterModel<modelpool::EmbeddingModel>("bench", embedder); !s.ok())
    modelpool::cli::Fail(s);
  if (auto s = (*pool)->PreloadModel("bench", gpus * args.workers_per_device); !s.ok())
    modelpool::cli::Fail(s);
  const std::vector<std::string> warm_up(texts.begin(),
                                         texts.begin() + std::min<size_t>(4096, texts.size()));
  if (auto out = (*pool)->Embed("bench", warm_up); !out.ok()) modelpool::cli::Fail(out.status());

  std::vector<double> runs;
  int64_t tokens = 0;
  for (int r = 0; r < args.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto out = (*pool)->Embed("bench", texts, {}, {.normalize = true});
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!out.ok()) modelpool::cli::Fail(out.status());
    tokens = out->num_tokens;
  }
  std::sort(runs.begin(), runs.end());
  Measurement m{gpus, runs[runs.size() / 2]};
  m.docs_per_s = texts.size() / m.seconds;
  m.tok_per_s = tokens / m.seconds;
  absl::PrintF(
      "{\"what\": \"modelpool_workers_embed\", \"gpus\": %d, \"workers_per_device\": %d, "
      "\"dtype\": \"%s\", \"docs\": %d, \"tokens\": %d, \"median_s\": %.4f, \"best_s\": %.4f, "
      "\"docs_per_s\": %.1f, \"tok_per_s\": %.0f}\n",
      gpus, args.workers_per_device, std::string(modelpool::DTypeName(args.dtype)), texts.size(),
      tokens, m.seconds, runs.front(), m.docs_per_s, m.tok_per_s);
  std::fflush(stdout);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  const std::vector<std::string>& texts = args.texts;
  const int gpus = modelpool::DeviceInventory::System()->GpuCount();
  if (gpus < 1) modelpool::cli::Fail(absl::FailedPreconditionError("no GPU"));

  const Measurement one = Measure(args, texts, 1);
  const Measurement all = gpus > 1 ? Measure(args, texts, gpus) : one;

  double peer_one = 0, peer_pool = 0;
  std::string peer_name;
  if (!args.peer.empty()) {
    const modelpool::bench::PeerOutput peer = modelpool::bench::RunPeer(args.peer);
    modelpool::bench::CheckPeerSucceeded(peer, args.peer);
    for (const nlohmann::json& line : peer.lines) {
      const std::string what = line.value("what", "");
      if (what == "st_encode" && line.value("batch_size", 0) == 128)
        peer_one = line.at("tok_per_s");
      if (what == "st_encode_pool") peer_pool = line.at("tok_per_s");
      peer_name = line.value("peer", peer_name);
    }
  }
  absl::PrintF("\n%-46s %12s %12s\n", "", "docs/s", "tokens/s");
  absl::PrintF("%-46s %12.0f %12.0f\n", "modelpool WorkerPool, 1 GPU", one.docs_per_s,
               one.tok_per_s);
  absl::PrintF("%-46s %12.0f %12.0f\n", absl::StrFormat("modelpool WorkerPool, %d GPUs", all.gpus),
               all.docs_per_s, all.tok_per_s);
  absl::PrintF("%-46s %12.2fx   (target >= 1.9x)\n", "all GPUs / one GPU",
               all.tok_per_s / one.tok_per_s);
  if (peer_one > 0) {
    absl::PrintF("%-46s %25.0f\n", peer_name + ", 1 GPU, batch 128", peer_one);
    absl::PrintF("%-46s %12.2fx\n", "modelpool 1 GPU / theirs 1 GPU", one.tok_per_s / peer_one);
  }
  if (peer_pool > 0) {
    absl::PrintF("%-46s %25.0f\n", absl::StrFormat("%s pool, %d GPUs", peer_name, gpus), peer_pool);
    absl::PrintF("%-46s %12.2fx   (target >= 2x)\n", "modelpool all GPUs / their pool",
                 all.tok_per_s / peer_pool);
  }
  return 0;
}
