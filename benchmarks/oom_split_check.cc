// oom_split_check: does a batch that really runs out of CUDA memory come back whole? Embeds
// `--texts` documents as one request with the GPU's memory uncapped (the reference), then caps
// the caching allocator at `--memory-gib` (PyTorch's per-process memory fraction) and sends the
// same request again: the pool must meet the out-of-memory error by splitting the batch
// (Note [Out of memory in a batch]) and return every row, equal to the reference.
//
//   oom_split_check --model DIR --corpus corpus.txt [--texts 2048] [--dtype float16]
//                   [--max-batch-tokens 262144] [--memory-gib 3]
//
// Prints one JSON object; exits 1 when no out-of-memory error happened, a row is missing, or a
// vector differs from the reference (cosine below 0.999).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "examples/common/command_line.h"
#include "modelpool/workers/worker_pool.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(int64_t, texts, 2048, "documents in the one request");
ABSL_FLAG(std::string, dtype, "float16", "float32, float16 or bfloat16");
ABSL_FLAG(int64_t, max_batch_tokens, 262144, "the most tokens one forward pass holds");
ABSL_FLAG(double, memory_gib, 3, "the cap on the caching allocator for the second run");

using modelpool::cli::Fail;

namespace {

const modelpool::ModelStats& StatsOf(const modelpool::WorkerPoolStats& stats) {
  for (const modelpool::ModelStats& model : stats.models) {
    if (model.model_id == "bench") return model;
  }
  Fail("the pool reports no stats for its model");
}

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv,
                                   "oom_split_check --model DIR --corpus FILE [--texts N] "
                                   "[--dtype float16] [--max-batch-tokens N] [--memory-gib G]");
  std::vector<std::string> texts =
      modelpool::bench::ReadCorpus(modelpool::cli::Required(FLAGS_corpus));
  texts.resize(std::min<size_t>(
      texts.size(), static_cast<size_t>(modelpool::cli::InRange(FLAGS_texts, 1, 1 << 20))));
  const double memory_gib = absl::GetFlag(FLAGS_memory_gib);
  if (!(memory_gib > 0) || memory_gib > 1 << 20) Fail("--memory-gib must lie in (0, 1048576]");

  modelpool::Settings settings;
  settings.devices = {modelpool::Device::Cuda(0)};
  auto manager = modelpool::EmbeddingModelManager::Create(
      {.model_dir = modelpool::cli::Required(FLAGS_model),
       .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
       .max_batch_tokens = modelpool::cli::InRange(FLAGS_max_batch_tokens, 1, 1 << 24),
       .settings = settings});
  if (!manager.ok()) Fail(manager.status());
  auto pool = modelpool::WorkerPool::Create({});
  if (!pool.ok()) Fail(pool.status());
  if (auto s = (*pool)->RegisterModel<modelpool::EmbeddingModel>(
          "bench", std::shared_ptr<modelpool::EmbeddingModelManager>(*std::move(manager)));
      !s.ok()) {
    Fail(s);
  }
  auto embed = [&] {
    return (*pool)->Submit("bench", modelpool::EmbedRequest{.texts = texts}).get();
  };

  absl::StatusOr<modelpool::Embeddings> reference = embed();
  if (!reference.ok()) Fail(reference.status());
  const uint64_t oom_before = StatsOf((*pool)->Stats()).out_of_memory;

  const double total = static_cast<double>(at::cuda::getDeviceProperties(0)->totalGlobalMem);
  if (memory_gib * (1 << 30) >= total) Fail("--memory-gib must be below the GPU's memory");
  c10::cuda::CUDACachingAllocator::emptyCache();
  c10::cuda::CUDACachingAllocator::setMemoryFraction(memory_gib * (1 << 30) / total, 0);
  absl::StatusOr<modelpool::Embeddings> capped = embed();
  c10::cuda::CUDACachingAllocator::setMemoryFraction(1.0, 0);
  if (!capped.ok()) Fail(capped.status());

  const modelpool::ModelStats& stats = StatsOf((*pool)->Stats());
  const at::Tensor cosines = at::cosine_similarity(reference->tensor, capped->tensor, 1);
  const double min_cosine = cosines.min().item<double>();
  const bool rows_match =
      capped->size() == reference->size() && capped->num_tokens == reference->num_tokens;
  const uint64_t oom = stats.out_of_memory - oom_before;
  const bool ok = oom > 0 && stats.split_retries > 0 && rows_match && min_cosine >= 0.999;
  absl::PrintF(
      "{\"what\": \"oom_split_check\", \"texts\": %d, \"tokens\": %d, \"memory_gib\": %.2f, "
      "\"out_of_memory\": %d, \"split_retries\": %d, \"rows\": %d, \"reference_rows\": %d, "
      "\"min_cosine\": %.6f, \"ok\": %s}\n",
      texts.size(), reference->num_tokens, memory_gib, oom, stats.split_retries, capped->size(),
      reference->size(), min_cosine, ok ? "true" : "false");
  return ok ? 0 : 1;
}
