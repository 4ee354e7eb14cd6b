// modelpool-embed: sentence vectors for a file of texts, with a BERT-family model.
//
//   modelpool-embed [--model DIR|org/name] (--input texts.txt | --json-in texts.json)
//                   (--output vectors.npy | --json-out vectors.json)
//                   [--device cuda:0] [--dtype float16] [--prompt TEXT] [--max-batch-tokens N]
//
// texts.txt holds one text per line (blank lines are texts too), texts.json a JSON array of
// strings. vectors.npy is a float32 [texts, dimension] array for numpy.load; vectors.json a
// JSON array of arrays. --model is a folder or a Hugging Face id in the local cache; without
// it the small model bundled with modelpool is used. A progress bar goes to stderr, then a
// summary line to stdout. Exit status 0 on success, 1 on any error (bad arguments included).

#include <fmt/core.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "examples/common/command_line.h"
#include "examples/common/input_files.h"
#include "examples/common/output_file.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/base/settings.h"
#include "modelpool/managers/embedding_model_manager.h"

ABSL_FLAG(std::string, model, "",
          "a model folder or a Hugging Face id (org/name[@revision]) in the local cache; the "
          "bundled tiny model when empty");
ABSL_FLAG(std::string, input, "", "a text file, one text per line");
ABSL_FLAG(std::string, json_in, "", "a JSON array of strings");
ABSL_FLAG(std::string, output, "", "the vectors as a float32 .npy file");
ABSL_FLAG(std::string, json_out, "", "the vectors as a JSON array of arrays");
ABSL_FLAG(std::string, device, "", "cpu or cuda:N; the settings' devices when empty");
ABSL_FLAG(std::string, dtype, "", "float32, float16 or bfloat16; the model's default when empty");
ABSL_FLAG(std::string, prompt, "", "text put before every input text");
ABSL_FLAG(int64_t, max_batch_tokens, 16384, "the most tokens one batch holds");

namespace {

constexpr char kUsage[] =
    "modelpool-embed [--model DIR|org/name] (--input texts.txt | --json-in texts.json)\n"
    "                (--output vectors.npy | --json-out vectors.json)\n"
    "                [--device cpu|cuda:N] [--dtype float32|float16|bfloat16] [--prompt TEXT]\n"
    "                [--max-batch-tokens N]";

// Far above any model's context times a useful batch; keeps the footprint arithmetic small.
constexpr int64_t kMaxBatchTokensLimit = int64_t{1} << 24;

struct Args {
  std::string model;
  std::string input, json_in, output, json_out, prompt;
  std::optional<modelpool::Device> device;
  std::optional<modelpool::DType> dtype;
  int64_t max_batch_tokens = 0;
};

Args ReadFlags() {
  Args args;
  args.model = absl::GetFlag(FLAGS_model);
  if (args.model.empty()) {
    args.model = MODELPOOL_BUNDLED_MODEL;
    std::error_code error;
    if (!std::filesystem::exists(args.model, error)) {
      modelpool::cli::Fail("--model is needed: the bundled model is not at " + args.model);
    }
  }
  args.input = absl::GetFlag(FLAGS_input);
  args.json_in = absl::GetFlag(FLAGS_json_in);
  args.output = absl::GetFlag(FLAGS_output);
  args.json_out = absl::GetFlag(FLAGS_json_out);
  args.prompt = absl::GetFlag(FLAGS_prompt);
  if (!absl::GetFlag(FLAGS_device).empty()) args.device = modelpool::cli::DeviceOf(FLAGS_device);
  if (!absl::GetFlag(FLAGS_dtype).empty()) args.dtype = modelpool::cli::DTypeOf(FLAGS_dtype);
  args.max_batch_tokens = modelpool::cli::InRange(FLAGS_max_batch_tokens, 1, kMaxBatchTokensLimit);
  if (args.input.empty() == args.json_in.empty()) {
    modelpool::cli::Fail("give one of --input and --json-in");
  }
  if (args.output.empty() == args.json_out.empty()) {
    modelpool::cli::Fail("give one of --output and --json-out");
  }
  return args;
}

// numpy's .npy format, version 1.0: float32, little-endian, C order.
absl::Status WriteNpy(const std::string& path, const modelpool::Embeddings& embeddings) {
  static_assert(std::endian::native == std::endian::little, "the data is written as it lies");
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
                  embeddings.size(), embeddings.dimension());
  // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, ends in \n.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header.push_back('\n');
  const char preamble[10] = {'\x93',
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             '\x01',
                             '\x00',
                             static_cast<char>(header.size() & 0xff),
                             static_cast<char>(header.size() >> 8)};
  const std::string_view data(static_cast<const char*>(embeddings.tensor.data_ptr()),
                              static_cast<size_t>(embeddings.tensor.numel()) * sizeof(float));
  return modelpool::cli::WriteOutputFile(
      path, {std::string_view(preamble, sizeof(preamble)), header, data});
}

absl::Status WriteJson(const std::string& path, const modelpool::Embeddings& embeddings) {
  const std::string text = nlohmann::json(embeddings.vectors()).dump() + "\n";
  return modelpool::cli::WriteOutputFile(path, {text});
}

void DrawProgress(int64_t done, int64_t total) {
  constexpr int kWidth = 40;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  fmt::print(stderr, "\r[{}{}] {}/{}", std::string(filled, '#'), std::string(kWidth - filled, '.'),
             done, total);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv, kUsage);
  const Args args = ReadFlags();
  absl::StatusOr<std::vector<std::string>> texts = args.input.empty()
                                                       ? modelpool::cli::ReadTexts(args.json_in)
                                                       : modelpool::cli::ReadLines(args.input);
  if (!texts.ok()) modelpool::cli::Fail(texts.status());

  absl::StatusOr<modelpool::Settings> settings = modelpool::Settings::FromEnv();
  if (!settings.ok()) modelpool::cli::Fail(settings.status());
  if (args.device.has_value()) {
    settings->devices = {*args.device};
    settings->force_cpu = !args.device->is_cuda();
    settings->force_gpu = args.device->is_cuda();
  }
  settings->max_instances = 1;
  auto embedder =
      modelpool::EmbeddingModelManager::Create({.model_dir = args.model,
                                                .dtype = args.dtype,
                                                .max_batch_tokens = args.max_batch_tokens,
                                                .settings = *settings});
  if (!embedder.ok()) modelpool::cli::Fail(embedder.status());
  // Loading (and the warm-up on a GPU) is not part of the timing.
  absl::StatusOr<modelpool::Lease<modelpool::EmbeddingModel>> lease =
      (*embedder)->Acquire(absl::Minutes(5));
  if (!lease.ok()) modelpool::cli::Fail(lease.status());

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<modelpool::Embeddings> embeddings =
      (*lease)->Embed(*texts, {.prompt = args.prompt, .on_progress = DrawProgress});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "\n");
  if (!embeddings.ok()) modelpool::cli::Fail(embeddings.status());

  const absl::Status written = args.output.empty() ? WriteJson(args.json_out, *embeddings)
                                                   : WriteNpy(args.output, *embeddings);
  if (!written.ok()) modelpool::cli::Fail(written);
  fmt::print(
      "{} documents, {} tokens, {} truncated, {:.3f} s, {:.1f} documents/s, dimension {}, "
      "{} {}\n",
      embeddings->size(), embeddings->num_tokens, embeddings->num_truncated, seconds,
      seconds > 0 ? embeddings->size() / seconds : 0.0, embeddings->dimension(),
      (*lease)->device().ToString(), std::string(modelpool::DTypeName((*lease)->dtype())));
  modelpool::cli::FinishStdout();
  return 0;
}
