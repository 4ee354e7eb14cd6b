// embed_parity: how close float16 and bfloat16 vectors come to sentence-transformers' float32
// ones, on the tiny reference models (tests/data/bert), from the reference ids.
//
//   embed_parity [--device cuda:0]
//
// Prints one JSON line per model and dtype, then a table of the lowest cosine per dtype. Exit
// status 1 when float32 is under 0.99999, float16 under 0.999 or bfloat16 under 0.995.

#include <torch/cuda.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "examples/common/command_line.h"
#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/models/embedding_model.h"
#include "tests/testing/bert_reference.h"

ABSL_FLAG(std::string, device, "", "cpu or cuda:N; cuda:0 when there is a GPU, else cpu");

namespace modelpool {
namespace {

int Run(const Device& device) {
  const std::map<DType, double> thresholds = {
      {DType::kFloat32, 0.99999}, {DType::kFloat16, 0.999}, {DType::kBFloat16, 0.995}};
  std::map<DType, double> lowest;
  bool failed = false;
  for (const char* name : {"bert-tiny-cls", "bert-tiny-mean"}) {
    absl::StatusOr<testing::BertReference> reference =
        testing::ReadBertReference(MODELPOOL_SOURCE_DIR, name);
    if (!reference.ok()) {
      absl::FPrintF(stderr, "embed_parity: %s\n", reference.status().ToString());
      return 2;
    }
    auto files = ReadEmbeddingModelFiles(reference->model_dir);
    if (!files.ok()) {
      absl::FPrintF(stderr, "embed_parity: %s\n", files.status().ToString());
      return 2;
    }
    std::vector<std::vector<int32_t>> rows;
    for (const auto& c : reference->cases) rows.push_back(c.input_ids);
    for (const auto& [dtype, threshold] : thresholds) {
      auto model = LoadEmbeddingModel(*files, nullptr, device, dtype, 1024);
      absl::StatusOr<Embeddings> out =
          model.ok() ? (*model)->EmbedIds(rows, {.max_batch_tokens = 200}) : model.status();
      if (!out.ok()) {
        absl::FPrintF(stderr, "embed_parity: %s %s: %s\n", name, DTypeName(dtype),
                      out.status().ToString());
        return 1;
      }
      double low = 1.0;
      for (size_t i = 0; i < rows.size(); ++i) {
        low = std::min(low, testing::Cosine((*out)[i], reference->cases[i].ids_embedding));
      }
      // A dtype the device does not compute in (float16 on the CPU) is not reported as one.
      const DType used = (*model)->dtype();
      absl::PrintF(
          "{\"model\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"min_cosine\": %.9f}\n",
          name, device.ToString(), DTypeName(used), low);
      if (used != dtype) continue;
      lowest[dtype] = std::min(lowest.count(dtype) ? lowest[dtype] : 1.0, low);
      failed = failed || low < threshold;
    }
  }
  absl::PrintF("\n%-10s %-12s %-10s %s\n", "dtype", "min cosine", "needs", "");
  for (const auto& [dtype, low] : lowest) {
    const double threshold = thresholds.at(dtype);
    absl::PrintF("%-10s %-12.9f %-10.5f %s\n", DTypeName(dtype), low, threshold,
                 low >= threshold ? "ok" : "FAIL");
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv, "embed_parity [--device cpu|cuda:N]");
  const modelpool::Device device = !absl::GetFlag(FLAGS_device).empty()
                                       ? modelpool::cli::DeviceOf(FLAGS_device)
                                   : torch::cuda::is_available() ? modelpool::Device::Cuda(0)
                                                                 : modelpool::Device::Cpu();
  return modelpool::Run(device);
}
