// embed_profile: where the time of one corpus goes on the GPU. Embeds the corpus once with the
// profiler on (libtorch's Kineto) and prints wall time, the sum of kernel times, and the
// kernels that take most of it; writes a Chrome trace when --trace is given.
//
//   embed_profile --model DIR --corpus corpus.txt [--dtype float16] [--max-batch-tokens 16384]
//                 [--docs 4000] [--trace trace.json]

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "benchmarks/kernel_profile.h"
#include "examples/common/command_line.h"
#include "modelpool/managers/embedding_model_manager.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, dtype, "float16", "float32, float16 or bfloat16");
ABSL_FLAG(int64_t, max_batch_tokens, 16384, "the most tokens one batch holds");
ABSL_FLAG(int64_t, docs, 4000, "the first this many documents of the corpus are embedded");
ABSL_FLAG(std::string, trace, "", "write a Chrome trace here");

using modelpool::cli::Fail;

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv,
                                   "embed_profile --model DIR --corpus FILE [--dtype float16] "
                                   "[--max-batch-tokens N] [--docs N] [--trace FILE]");
  const std::string model = modelpool::cli::Required(FLAGS_model);
  const modelpool::DType dtype = modelpool::cli::DTypeOf(FLAGS_dtype);
  const int64_t max_batch_tokens = modelpool::cli::InRange(FLAGS_max_batch_tokens, 1, 1 << 24);
  const int64_t docs = modelpool::cli::InRange(FLAGS_docs, 1, int64_t{1} << 40);
  const std::string trace = absl::GetFlag(FLAGS_trace);
  std::vector<std::string> texts =
      modelpool::bench::ReadCorpus(modelpool::cli::Required(FLAGS_corpus));
  texts.resize(std::min<size_t>(texts.size(), static_cast<size_t>(docs)));

  modelpool::Settings settings;
  settings.devices = {modelpool::Device::Cuda(0)};
  settings.max_instances = 1;
  auto manager = modelpool::EmbeddingModelManager::Create({.model_dir = model,
                                                           .dtype = dtype,
                                                           .max_batch_tokens = max_batch_tokens,
                                                           .settings = settings});
  if (!manager.ok()) Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) Fail(lease.status());
  if (auto out = (*lease)->Embed(texts); !out.ok()) Fail(out.status());  // warm-up

  absl::StatusOr<modelpool::Embeddings> out;
  const modelpool::bench::KernelProfile profile =
      modelpool::bench::ProfileKernels([&] { out = (*lease)->Embed(texts); }, trace);
  if (!out.ok()) Fail(out.status());
  absl::PrintF(
      "{\"what\": \"embed_profile\", \"docs\": %d, \"tokens\": %d, \"wall_s\": %.4f, "
      "\"kernel_s\": %.4f, \"kernel_share\": %.3f, \"tok_per_s\": %.0f}\n",
      texts.size(), out->num_tokens, profile.wall_s, profile.kernel_s,
      profile.kernel_s / profile.wall_s, out->num_tokens / profile.wall_s);
  modelpool::bench::PrintTopKernels(profile);
  return 0;
}
