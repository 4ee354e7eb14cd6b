// summarize_workers_bench: does a WorkerPool spread summaries over the workers of one GPU and
// over every GPU of the host, in one process? Requests of `--batch` texts of `--input-tokens`
// tokens go through WorkerPool::Summarize with `--beams` beams and exactly `--new-tokens` new
// tokens each (min = max, so the time does not depend on the random weights): on one GPU with
// one worker, on one GPU with `--workers-per-device` workers, then on every GPU; transformers'
// generate() on one GPU is the peer.
//
//   summarize_workers_bench --model DIR --corpus corpus.txt [--dtype bfloat16] [--batch 32]
//       [--input-tokens 512] [--new-tokens 64] [--beams 4] [--requests 8]
//       [--workers-per-device 2] [--peer "COMMAND"]
//
// COMMAND (.device/bench/peers/hf_generate.py MODEL CORPUS) prints JSON lines; the one with the
// same batch and beams gives the ratio. Targets: two workers on one GPU >= 0.97x one worker;
// all GPUs >= 1.85x one GPU.

#include <algorithm>
#include <chrono>
#include <cstdio>
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
ABSL_FLAG(std::string, dtype, "bfloat16", "bfloat16 or float32");
ABSL_FLAG(int64_t, batch, 32, "texts per request");
ABSL_FLAG(int64_t, input_tokens, 512, "input tokens per text");
ABSL_FLAG(int64_t, new_tokens, 64, "generated tokens per text");
ABSL_FLAG(int64_t, beams, 4, "beams per text");
ABSL_FLAG(int64_t, requests, 8, "requests per measurement");
ABSL_FLAG(int64_t, workers_per_device, 2, "worker threads per GPU in the second measurement");
ABSL_FLAG(std::string, peer, "", "a command whose JSON lines give the peer's figures");

namespace {

struct Args {
  std::string model, corpus, peer;
  modelpool::DType dtype = modelpool::DType::kBFloat16;
  int batch = 32, input_tokens = 512, new_tokens = 64, beams = 4, requests = 8;
  int workers_per_device = 2;
  std::vector<std::string> docs;
};

using modelpool::cli::Fail;

// Texts long enough to fill `input_tokens` (documents joined until a text has about 8 bytes a
// token), `n` of them.
std::vector<std::string> LongTexts(const std::vector<std::string>& docs, int n, int input_tokens) {
  std::vector<std::string> texts;
  size_t next = 0;
  for (int i = 0; i < n; ++i) {
    std::string text;
    while (text.size() < static_cast<size_t>(input_tokens) * 8) {
      text += docs[next++ % docs.size()];
      text += ' ';
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

// Generated tokens/s of `texts` through a WorkerPool on the first `gpus` GPUs with `workers`
// workers each; the median of three runs after a warm-up.
double Measure(const Args& args, const std::vector<std::string>& texts, int gpus, int workers) {
  modelpool::Settings settings;
  for (int i = 0; i < gpus; ++i) settings.devices.push_back(modelpool::Device::Cuda(i));
  settings.max_instances = gpus * workers;
  modelpool::WorkerSettings worker_settings;
  worker_settings.workers_per_device = workers;
  auto manager =
      modelpool::SummarizationModelManager::Create({.model_dir = args.model,
                                                    .dtype = args.dtype,
                                                    .max_batch_size = args.batch,
                                                    .max_num_beams = args.beams,
                                                    .max_input_tokens = args.input_tokens,
                                                    .max_new_tokens = args.new_tokens,
                                                    .settings = settings});
  if (!manager.ok()) Fail(manager.status());
  auto pool = modelpool::WorkerPool::Create({.settings = settings, .workers = worker_settings});
  if (!pool.ok()) Fail(pool.status());
  std::shared_ptr<modelpool::SummarizationModelManager> summarizer(*std::move(manager));
  if (auto s = (*pool)->RegisterModel<modelpool::SummarizationModel>("bench", summarizer); !s.ok())
    Fail(s);
  if (auto s = (*pool)->PreloadModel("bench", gpus * workers); !s.ok()) Fail(s);
  modelpool::GenerationOptions generation;
  generation.num_beams = args.beams;
  generation.max_new_tokens = args.new_tokens;
  generation.min_new_tokens = args.new_tokens;
  const modelpool::CorpusOptions corpus{.texts_per_request = args.batch};
  const std::vector<std::string> warm_up(
      texts.begin(), texts.begin() + std::min<size_t>(texts.size(), args.batch * gpus * workers));
  if (auto out = (*pool)->Summarize("bench", warm_up, generation, corpus); !out.ok())
    Fail(out.status());
  std::vector<double> runs;
  for (int r = 0; r < 3; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto out = (*pool)->Summarize("bench", texts, generation, corpus);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!out.ok()) Fail(out.status());
  }
  std::sort(runs.begin(), runs.end());
  const double tok_per_s = static_cast<double>(texts.size()) * args.new_tokens / runs[1];
  absl::PrintF(
      "{\"what\": \"modelpool_workers_summarize\", \"gpus\": %d, \"workers_per_device\": %d, "
      "\"dtype\": \"%s\", \"texts\": %d, \"batch\": %d, \"beams\": %d, \"new_tokens\": %d, "
      "\"median_s\": %.3f, \"gen_tok_per_s\": %.1f}\n",
      gpus, workers, std::string(modelpool::DTypeName(args.dtype)), texts.size(), args.batch,
      args.beams, args.new_tokens, runs[1], tok_per_s);
  std::fflush(stdout);
  return tok_per_s;
}

}  // namespace

int main(int argc, char** argv) {
  using modelpool::cli::InRange;
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "summarize_workers_bench --model DIR --corpus FILE [--dtype bfloat16] [--batch N] "
      "[--input-tokens N] [--new-tokens N] [--beams N] [--requests N] [--workers-per-device N] "
      "[--peer COMMAND]");
  Args args{.model = modelpool::cli::Required(FLAGS_model),
            .corpus = modelpool::cli::Required(FLAGS_corpus),
            .peer = absl::GetFlag(FLAGS_peer),
            .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
            .batch = static_cast<int>(InRange(FLAGS_batch, 1, 4096)),
            .input_tokens = static_cast<int>(InRange(FLAGS_input_tokens, 2, 1 << 16)),
            .new_tokens = static_cast<int>(InRange(FLAGS_new_tokens, 1, 1 << 16)),
            .beams = static_cast<int>(InRange(FLAGS_beams, 1, 64)),
            .requests = static_cast<int>(InRange(FLAGS_requests, 1, 1 << 16)),
            .workers_per_device = static_cast<int>(InRange(FLAGS_workers_per_device, 1, 1024))};
  args.docs = modelpool::bench::ReadCorpus(args.corpus);
  const int gpus = modelpool::DeviceInventory::System()->GpuCount();
  if (gpus < 1) Fail(absl::FailedPreconditionError("no GPU"));

  // The peer first, on an idle GPU.
  double peer = 0;
  std::string peer_name = "peer";
  if (!args.peer.empty()) {
    const modelpool::bench::PeerOutput output = modelpool::bench::RunPeer(args.peer);
    modelpool::bench::CheckPeerSucceeded(output, args.peer);
    for (const nlohmann::json& line : output.lines) {
      absl::PrintF("%s\n", line.dump());
      if (line.value("batch", 0) == args.batch && line.value("beams", 0) == args.beams) {
        peer = line.at("gen_tok_per_s").get<double>();
        peer_name = line.value("peer", peer_name);
      }
    }
  }

  const int workers = args.workers_per_device;
  const std::vector<std::string> one_gpu =
      LongTexts(args.docs, args.batch * args.requests, args.input_tokens);
  const double one = Measure(args, one_gpu, 1, 1);
  const double shared = workers > 1 ? Measure(args, one_gpu, 1, workers) : one;
  // As many requests per worker on every GPU as on one GPU's workers.
  const std::vector<std::string> all_gpus =
      LongTexts(args.docs, args.batch * args.requests * gpus, args.input_tokens);
  const double all = gpus > 1 ? Measure(args, all_gpus, gpus, 1) : one;

  absl::PrintF("\n%-52s %14s\n", "", "new tokens/s");
  absl::PrintF("%-52s %14.0f\n", "modelpool WorkerPool, 1 GPU, 1 worker", one);
  absl::PrintF("%-52s %14.0f  %.2fx (target >= 0.97x)\n",
               absl::StrFormat("modelpool WorkerPool, 1 GPU, %d workers", workers), shared,
               shared / one);
  absl::PrintF("%-52s %14.0f  %.2fx (target >= 1.85x)\n",
               absl::StrFormat("modelpool WorkerPool, %d GPUs, 1 worker each", gpus), all,
               all / one);
  if (peer > 0) {
    absl::PrintF("%-52s %14.0f\n", (peer_name + " generate, 1 GPU").substr(0, 52), peer);
    absl::PrintF("%-52s %13.2fx\n", "modelpool 1 GPU / theirs 1 GPU", one / peer);
  }
  return 0;
}
