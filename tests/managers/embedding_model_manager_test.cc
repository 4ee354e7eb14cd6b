#include "modelpool/managers/embedding_model_manager.h"

#include <torch/cuda.h>

#include <memory>
#include <string>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/logging.h"
#include "modelpool/devices/fake_device_inventory.h"
#include "modelpool/models/torch_types.h"
#include "modelpool/text/tokenizer.h"
#include "tests/testing/bert_reference.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using testing::BertReference;
using testing::Cosine;
using testing::Norm;

const std::string kSource = MODELPOOL_SOURCE_DIR;

// Settings that keep the manager on the CPU in float32, as the reference ran.
Settings CpuSettings() {
  Settings settings;
  settings.force_cpu = true;
  settings.max_instances = 2;
  return settings;
}

// Messages logged while it lives.
class LogCapture {
 public:
  LogCapture() {
    SetLogSink([this](LogSeverity, absl::string_view message) {
      MutexLock lock(&mu_);
      lines_.emplace_back(message);
    });
  }
  ~LogCapture() { SetLogSink(nullptr); }
  bool Contains(const std::string& text) {
    MutexLock lock(&mu_);
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

TEST_CASE("Texts embed as sentence-transformers embeds them, prompts and truncation included") {
  for (const char* name : {"bert-tiny-cls", "bert-tiny-mean"}) {
    INFO(name);
    absl::StatusOr<BertReference> reference = testing::ReadBertReference(kSource, name);
    REQUIRE(reference.ok());
    auto manager = EmbeddingModelManager::Create({.model_dir = reference->model_dir,
                                                  .dtype = DType::kFloat32,
                                                  .max_batch_tokens = 256,
                                                  .settings = CpuSettings()});
    REQUIRE(manager.ok());
    CHECK((*manager)->dimension() == reference->dimension);
    CHECK((*manager)->max_seq_length() == reference->max_seq_length);

    // The reference's cases are plain texts first, then texts under one prompt.
    std::vector<std::string> plain, prompted;
    std::string prompt;
    int64_t truncated = 0;
    for (const auto& c : reference->cases) {
      (c.prompt.empty() ? plain : prompted).push_back(c.text);
      if (!c.prompt.empty()) prompt = c.prompt;
      if (c.prompt.empty() && c.truncated) ++truncated;
    }
    absl::StatusOr<Embeddings> a = (*manager)->Embed(plain);
    absl::StatusOr<Embeddings> b = (*manager)->Embed(prompted, {.prompt = prompt});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->num_truncated == truncated);
    for (size_t i = 0; i < reference->cases.size(); ++i) {
      const auto& c = reference->cases[i];
      INFO("case " << i << ": prompt '" << c.prompt << "', text '" << c.text << "'");
      const absl::Span<const float> ours = i < plain.size() ? (*a)[i] : (*b)[i - plain.size()];
      REQUIRE(static_cast<int64_t>(ours.size()) == reference->dimension);
      CHECK(Cosine(ours, c.embedding) >= 0.99999);
      CHECK(std::abs(Norm(ours) - Norm(c.embedding)) <= 1e-5 * Norm(c.embedding));
    }
  }
}

TEST_CASE("The folder's tokenizer gives the reference ids") {
  absl::StatusOr<BertReference> reference = testing::ReadBertReference(kSource, "bert-tiny-cls");
  REQUIRE(reference.ok());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(reference->model_dir);
  REQUIRE(tokenizer.ok());
  for (const auto& c : reference->cases) {
    INFO("text '" << c.prompt << c.text << "'");
    CHECK((*tokenizer)
              ->Encode(c.prompt + c.text,
                       {.max_length = static_cast<int>(reference->max_seq_length)}) == c.input_ids);
  }
}

TEST_CASE("Create reports a broken folder with its file") {
  auto missing = EmbeddingModelManager::Create(
      {.model_dir = kSource + "/tests/data/models/no-such-model", .settings = CpuSettings()});
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  auto no_weights = EmbeddingModelManager::Create(
      {.model_dir = kSource + "/tests/data/models/all-MiniLM-L6-v2", .settings = CpuSettings()});
  CHECK(no_weights.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(no_weights.status().message()), Catch::Contains("model.safetensors"));
}

TEST_CASE("GPUs that libtorch cannot use leave the model on the CPU, and the log says why") {
  if (torch::cuda::is_available()) return;  // only a CPU-only libtorch shows this
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("fake", int64_t{80} << 30, int64_t{80} << 30);
  LogCapture log;
  auto manager =
      EmbeddingModelManager::Create({.model_dir = kSource + "/tests/data/models/bert-tiny-cls",
                                     .dtype = DType::kFloat16,
                                     .settings = Settings{},
                                     .inventory = inventory});
  REQUIRE(manager.ok());
  CHECK(((*manager)->devices() == std::vector<Device>{Device::Cpu()}));
  CHECK(
      log.Contains("bert-tiny-cls runs on the cpu: this host has 1 GPU(s), but the libtorch "
                   "this SDK uses has no CUDA support"));
  CHECK(log.Contains("float16 computes in float32 on the cpu"));
  absl::StatusOr<Embeddings> out = (*manager)->Embed({"hello"});
  REQUIRE(out.ok());
  CHECK(out->size() == 1);

  Settings force_gpu;
  force_gpu.force_gpu = true;
  auto refused =
      EmbeddingModelManager::Create({.model_dir = kSource + "/tests/data/models/bert-tiny-cls",
                                     .settings = force_gpu,
                                     .inventory = inventory});
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("force_gpu is set") && Catch::Contains("no CUDA support"));
  // The manager's inventory is the caller's as libtorch sees it, one object for both.
  CHECK(TorchDevices(inventory) == TorchDevices(inventory));
  CHECK(TorchDevices(inventory)->UsableGpuCount() == 0);
  CHECK(TorchDevices(inventory)->GpuCount() == 1);
}

TEST_CASE("Embed leases an instance and gives it back") {
  auto manager = EmbeddingModelManager::Create(
      {.model_dir = kSource + "/tests/data/models/bert-tiny-mean", .settings = CpuSettings()});
  REQUIRE(manager.ok());
  for (int i = 0; i < 3; ++i) REQUIRE((*manager)->Embed({"one", "two"}).ok());
  const PoolStats stats = (*manager)->Stats();
  CHECK(stats.created == 1);
  CHECK(stats.in_use == 0);
  CHECK(stats.available == 1);
}

TEST_CASE("An instance without a tokenizer takes ids only") {
  auto files = ReadEmbeddingModelFiles(kSource + "/tests/data/models/bert-tiny-cls");
  REQUIRE(files.ok());
  auto model = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, 256);
  REQUIRE(model.ok());
  CHECK((*model)->Embed({"hello"}).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace modelpool
