// embed: sentence vectors for a file of texts, with a BERT-family model folder.
//
//   embed [--model DIR] (--input texts.txt | --json-in texts.json)
//         (--output vectors.npy | --json-out vectors.json)
//         [--device cuda:0] [--dtype float16] [--prompt TEXT] [--max-batch-tokens N]
//
// texts.txt holds one text per line, texts.json a JSON array of strings. vectors.npy is a
// float32 [texts, dimension] array for numpy.load; vectors.json a JSON array of arrays. Without
// --model the small model bundled with modelpool is used. A progress bar goes to stderr, then
// a summary line to stdout. Exit status 2 for bad arguments, 1 when embedding fails.

#include <fmt/core.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/base/settings.h"
#include "modelpool/managers/embedding_model_manager.h"

namespace {

constexpr char kUsage[] =
    "usage: embed [--model DIR] (--input texts.txt | --json-in texts.json)\n"
    "             (--output vectors.npy | --json-out vectors.json)\n"
    "             [--device cpu|cuda:N] [--dtype float32|float16|bfloat16] [--prompt TEXT]\n"
    "             [--max-batch-tokens N]";

[[noreturn]] void Usage(const std::string& message) {
  fmt::print(stderr, "embed: {}\n{}\n", message, kUsage);
  std::exit(2);
}

[[noreturn]] void Fail(const std::string& message) {
  fmt::print(stderr, "\nembed: {}\n", message);
  std::exit(1);
}

struct Args {
  std::string model = MODELPOOL_BUNDLED_MODEL;
  std::string input, json_in, output, json_out, prompt;
  std::optional<modelpool::Device> device;
  std::optional<modelpool::DType> dtype;
  int64_t max_batch_tokens = 16384;
};

Args ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "--model") {
      args.model = value();
    } else if (arg == "--input") {
      args.input = value();
    } else if (arg == "--json-in") {
      args.json_in = value();
    } else if (arg == "--output") {
      args.output = value();
    } else if (arg == "--json-out") {
      args.json_out = value();
    } else if (arg == "--prompt") {
      args.prompt = value();
    } else if (arg == "--device") {
      absl::StatusOr<modelpool::Device> device = modelpool::Device::Parse(value());
      if (!device.ok()) Usage(std::string(device.status().message()));
      args.device = *device;
    } else if (arg == "--dtype") {
      absl::StatusOr<modelpool::DType> dtype = modelpool::ParseDType(value());
      if (!dtype.ok()) Usage(std::string(dtype.status().message()));
      args.dtype = *dtype;
    } else if (arg == "--max-batch-tokens") {
      const std::string n = value();
      char* end = nullptr;
      args.max_batch_tokens = std::strtoll(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || args.max_batch_tokens < 1) {
        Usage(fmt::format("--max-batch-tokens takes a positive whole number, not '{}'", n));
      }
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("{}\n", kUsage);
      std::exit(0);
    } else {
      Usage(fmt::format("unknown argument '{}'", arg));
    }
  }
  if (args.input.empty() == args.json_in.empty()) Usage("give one of --input and --json-in");
  if (args.output.empty() == args.json_out.empty()) Usage("give one of --output and --json-out");
  return args;
}

std::vector<std::string> ReadTexts(const Args& args) {
  std::vector<std::string> texts;
  if (!args.input.empty()) {
    std::ifstream in(args.input);
    if (!in) Usage(fmt::format("cannot read {}", args.input));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(std::move(line));
    }
    return texts;
  }
  std::ifstream in(args.json_in);
  if (!in) Usage(fmt::format("cannot read {}", args.json_in));
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!json.is_array()) Usage(fmt::format("{} is not a JSON array", args.json_in));
  for (const nlohmann::json& text : json) {
    if (!text.is_string())
      Usage(fmt::format("{} holds something other than strings", args.json_in));
    texts.push_back(text.get<std::string>());
  }
  return texts;
}

// numpy's .npy format, version 1.0: float32, little-endian, C order.
bool WriteNpy(const std::string& path, const modelpool::Embeddings& embeddings) {
  static_assert(std::endian::native == std::endian::little, "the data is written as it lies");
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
                  embeddings.size(), embeddings.dimension());
  // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, ends in \n.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(header.size() & 0xff));
  out.put(static_cast<char>(header.size() >> 8));
  out << header;
  out.write(static_cast<const char*>(embeddings.tensor.data_ptr()),
            static_cast<std::streamsize>(embeddings.tensor.numel() * sizeof(float)));
  return static_cast<bool>(out);
}

bool WriteJson(const std::string& path, const modelpool::Embeddings& embeddings) {
  std::ofstream out(path);
  out << nlohmann::json(embeddings.vectors()).dump() << "\n";
  return static_cast<bool>(out);
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
  const Args args = ParseArgs(argc, argv);
  const std::vector<std::string> texts = ReadTexts(args);

  absl::StatusOr<modelpool::Settings> settings = modelpool::Settings::FromEnv();
  if (!settings.ok()) Fail(std::string(settings.status().message()));
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
  if (!embedder.ok()) Fail(std::string(embedder.status().message()));
  // Loading (and the warm-up on a GPU) is not part of the timing.
  absl::StatusOr<modelpool::Lease<modelpool::EmbeddingModel>> lease =
      (*embedder)->Acquire(absl::Minutes(5));
  if (!lease.ok()) Fail(std::string(lease.status().message()));

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<modelpool::Embeddings> embeddings =
      (*lease)->Embed(texts, {.prompt = args.prompt, .on_progress = DrawProgress});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!embeddings.ok()) Fail(std::string(embeddings.status().message()));
  fmt::print(stderr, "\n");

  const bool written = args.output.empty() ? WriteJson(args.json_out, *embeddings)
                                           : WriteNpy(args.output, *embeddings);
  if (!written)
    Fail(fmt::format("cannot write {}", args.output.empty() ? args.json_out : args.output));
  fmt::print(
      "{} documents, {} tokens, {} truncated, {:.3f} s, {:.1f} documents/s, dimension {}, "
      "{} {}\n",
      embeddings->size(), embeddings->num_tokens, embeddings->num_truncated, seconds,
      seconds > 0 ? embeddings->size() / seconds : 0.0, embeddings->dimension(),
      (*lease)->device().ToString(), std::string(modelpool::DTypeName((*lease)->dtype())));
  return 0;
}
