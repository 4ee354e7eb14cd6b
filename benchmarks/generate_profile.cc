// generate_profile: where the time of one summarization batch goes on the GPU. Summarizes the
// `--batch` longest documents once with the profiler on (libtorch's Kineto), every text to
// exactly `--new-tokens` tokens, and prints wall time, the sum of kernel times, the kernels
// launched per generated position, and the kernels that take most of the time.
//
//   generate_profile --model DIR --corpus corpus.txt [--batch 32] [--beams 1]
//                    [--input-tokens 512] [--new-tokens 64] [--dtype bfloat16] [--trace FILE]
//
// MODELPOOL_DECODER_STEPS=eager|static|graph compares the decoder's steps.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "benchmarks/kernel_profile.h"
#include "examples/common/command_line.h"
#include "modelpool/managers/summarization_model_manager.h"

ABSL_FLAG(std::string, model, "", "the model folder or Hugging Face id");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(int64_t, batch, 32, "texts: the longest documents of the corpus");
ABSL_FLAG(int64_t, beams, 1, "beams per text");
ABSL_FLAG(int64_t, input_tokens, 512, "input tokens per text, at most");
ABSL_FLAG(int64_t, new_tokens, 64, "generated tokens per text");
ABSL_FLAG(std::string, dtype, "bfloat16", "bfloat16, float16 or float32");
ABSL_FLAG(std::string, trace, "", "write a Chrome trace here");

using modelpool::cli::Fail;

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "generate_profile --model DIR --corpus FILE [--batch N] [--beams N] [--input-tokens N] "
      "[--new-tokens N] [--dtype bfloat16] [--trace FILE]");
  const int64_t batch = modelpool::cli::InRange(FLAGS_batch, 1, 4096);
  const int64_t beams = modelpool::cli::InRange(FLAGS_beams, 1, 64);
  const int64_t input_tokens = modelpool::cli::InRange(FLAGS_input_tokens, 1, 1 << 16);
  const int64_t new_tokens = modelpool::cli::InRange(FLAGS_new_tokens, 1, 1 << 16);
  std::vector<std::string> docs =
      modelpool::bench::ReadCorpus(modelpool::cli::Required(FLAGS_corpus));
  std::stable_sort(docs.begin(), docs.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  docs.resize(std::min<size_t>(docs.size(), static_cast<size_t>(batch)));

  modelpool::Settings settings;
  settings.devices = {modelpool::Device::Cuda(0)};
  settings.max_instances = 1;
  auto manager = modelpool::SummarizationModelManager::Create(
      {.model_dir = modelpool::cli::Required(FLAGS_model),
       .dtype = modelpool::cli::DTypeOf(FLAGS_dtype),
       .max_batch_size = static_cast<int>(batch),
       .max_num_beams = static_cast<int>(beams),
       .max_input_tokens = static_cast<int>(input_tokens),
       .max_new_tokens = static_cast<int>(new_tokens),
       .settings = settings});
  if (!manager.ok()) Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(10));
  if (!lease.ok()) Fail(lease.status());
  modelpool::GenerationOptions options;
  options.num_beams = static_cast<int>(beams);
  options.max_new_tokens = static_cast<int>(new_tokens);
  options.min_new_tokens = static_cast<int>(new_tokens);
  if (auto warm = (*lease)->Summarize(docs, options); !warm.ok()) Fail(warm.status());

  absl::StatusOr<std::vector<std::string>> out;
  const modelpool::bench::KernelProfile profile = modelpool::bench::ProfileKernels(
      [&] { out = (*lease)->Summarize(docs, options); }, absl::GetFlag(FLAGS_trace));
  if (!out.ok()) Fail(out.status());
  const double generated = static_cast<double>(docs.size() * new_tokens);
  absl::PrintF(
      "{\"what\": \"generate_profile\", \"texts\": %d, \"beams\": %d, \"new_tokens\": %d, "
      "\"wall_s\": %.4f, \"kernel_s\": %.4f, \"kernel_share\": %.3f, \"kernels\": %d, "
      "\"kernels_per_position\": %.0f, \"gen_tok_per_s\": %.0f}\n",
      docs.size(), beams, new_tokens, profile.wall_s, profile.kernel_s,
      profile.kernel_s / profile.wall_s, profile.kernels,
      static_cast<double>(profile.kernels) / static_cast<double>(new_tokens),
      generated / profile.wall_s);
  modelpool::bench::PrintTopKernels(profile, 20);
  return 0;
}
