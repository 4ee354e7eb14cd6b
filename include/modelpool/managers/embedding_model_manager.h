#ifndef MODELPOOL_MANAGERS_EMBEDDING_MODEL_MANAGER_H_
#define MODELPOOL_MANAGERS_EMBEDDING_MODEL_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "modelpool/base/dtype.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool {

class Tokenizer;
struct EmbeddingModelFiles;

// EmbeddingModelManager
//
// Pools of instances of one sentence embedding model (a Hugging Face folder as published, with
// its sentence-transformers files; config.json's `model_type` picks the encoder: "bert",
// "roberta", "xlm-roberta") over the devices of `Settings`. The folder
// is read and checked once, in `Create()`; its configuration, tokenizer and memory-mapped
// weights are shared by every instance, and each instance only copies the weights to its
// device. Thread-safe.
//
// Example:
//   auto embedder = modelpool::EmbeddingModelManager::Create(
//       {.model_dir = "/models/mxbai-embed-large-v1", .dtype = modelpool::DType::kFloat16});
//   if (!embedder.ok()) return embedder.status();
//   absl::StatusOr<modelpool::Embeddings> vectors = (*embedder)->Embed(texts);
class EmbeddingModelManager : public AbstractModelManager<EmbeddingModel> {
 public:
  struct Options {
    // A model folder, or a Hugging Face id (`org/name`, optional `@revision`) in the local
    // cache; see `FindModelFolder()`. Messages name the model by it.
    std::string model_dir;
    // The compute type; unset: the settings' dtype, else float16 on GPUs and float32 on the CPU.
    // float16 on the CPU computes in float32.
    std::optional<DType> dtype;
    // The most ids in one forward pass, padding included. Each instance holds the memory for a
    // batch this large.
    int64_t max_batch_tokens = 16384;
    // Unset: `Settings::FromEnv()`.
    std::optional<Settings> settings;
    // Unset: `DeviceInventory::System()`.
    std::shared_ptr<DeviceInventory> inventory;
  };

  // EmbeddingModelManager::Create()
  //
  // Reads `options.model_dir` and sizes the pools; instances load on first use. Errors in the
  // folder are reported here, naming the file and what is wrong: `NotFound` (a missing file or
  // tensor, or a model missing from the cache, saying where it looked), `InvalidArgument` (a
  // bad or unsupported value, a tensor of the wrong shape, a `max_batch_tokens` beyond planning),
  // `FailedPrecondition` (pickled weights only; `force_gpu` set where libtorch cannot use a
  // GPU). When libtorch has no CUDA, the model runs on the CPU and the log says why.
  static absl::StatusOr<std::unique_ptr<EmbeddingModelManager>> Create(Options options);

  ~EmbeddingModelManager() override;

  // EmbeddingModelManager::Embed()
  //
  // Leases an instance (waiting up to `timeout`), embeds `texts` with it and gives it back.
  // Fails as `Acquire()` and `EmbeddingModel::Embed()` do; an instance that failed other than
  // on its input is unloaded rather than reused.
  absl::StatusOr<Embeddings> Embed(absl::Span<const std::string> texts,
                                   const EmbedOptions& options = {},
                                   absl::Duration timeout = absl::Minutes(1));

  std::string model_name() const override;
  std::string model_type() const override { return "embedding"; }

  // The length of the vectors.
  int64_t dimension() const;
  // Texts are cut to this many ids, special tokens included.
  int64_t max_seq_length() const;
  int64_t max_batch_tokens() const { return max_batch_tokens_; }

 protected:
  absl::StatusOr<std::unique_ptr<EmbeddingModel>> LoadInstance(const Device& device) override;
  int64_t EstimateInstanceBytes() const override;
  // The encoder's weights, shared by the instances on a device, and each instance's workspace.
  MemoryFootprint EstimateFootprint(const Device& device) const override;
  // Measurements are kept per dtype. The estimate stays one number, all of it per instance, until
  // instances on a device share their weights.
  std::string footprint_variant(const Device& device) const override;
  void ReleaseCachedMemory(const Device& device) override;

 private:
  EmbeddingModelManager(Settings settings, std::shared_ptr<DeviceInventory> inventory,
                        ModelFolder folder, std::shared_ptr<const EmbeddingModelFiles> files,
                        std::shared_ptr<const Tokenizer> tokenizer, std::optional<DType> dtype,
                        int64_t max_batch_tokens);
  // The compute type asked for on `device` (float16 on the CPU becomes float32 at load).
  DType RequestedDType(const Device& device) const;

  const ModelFolder folder_;
  const std::shared_ptr<const EmbeddingModelFiles> files_;
  const std::shared_ptr<const Tokenizer> tokenizer_;
  const std::optional<DType> dtype_;
  const int64_t max_batch_tokens_;
};

}  // namespace modelpool

#endif  // MODELPOOL_MANAGERS_EMBEDDING_MODEL_MANAGER_H_
