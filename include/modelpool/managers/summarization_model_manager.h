#ifndef MODELPOOL_MANAGERS_SUMMARIZATION_MODEL_MANAGER_H_
#define MODELPOOL_MANAGERS_SUMMARIZATION_MODEL_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool {

struct T5Folder;

// SummarizationModelManager
//
// Pools of instances of one T5-family model (t5-small to t5-large, flan-t5, mT5), loaded
// from a Hugging Face folder as published: config.json, model.safetensors (or its shards),
// spiece.model and, when present, generation_config.json for the generation defaults. The
// folder is read once, at `Create`; each instance then loads the weights onto its device and
// allocates its caches for the limits below, so an instance's footprint is fixed: the pools
// are sized from free VRAM and the footprint measured on the first GPU load.
//
// Compute types: bfloat16 (the default on GPUs) and float32 (the default on the CPU).
// float16 is refused: T5's activations overflow its range (transformers clamps them; the
// results are still wrong for many checkpoints).
//
// Thread-safe, as `AbstractModelManager`.
//
// Example:
//   auto manager = modelpool::SummarizationModelManager::Create(
//       {.model_dir = "/models/flan-t5-large", .dtype = modelpool::DType::kBFloat16});
//   if (!manager.ok()) return manager.status();
//   auto lease = (*manager)->Acquire(absl::Seconds(10));
//   if (!lease.ok()) return lease.status();
//   auto summaries = (*lease)->Summarize(docs, {.max_new_tokens = 128, .num_beams = 4});
class SummarizationModelManager : public AbstractModelManager<SummarizationModel> {
 public:
  struct Options {
    std::string model_dir;
    // Unset: `settings.dtype`, else bfloat16 on GPUs and float32 on the CPU.
    std::optional<DType> dtype;
    // The limits every instance is sized for (its caches are allocated at load); requests
    // beyond them are `InvalidArgument`. A request with more texts is split into batches of
    // `max_batch_size` texts (fewer when num_beams * texts would exceed
    // max_batch_size * max_num_beams).
    int max_batch_size = 32;
    int max_num_beams = 4;
    int max_input_tokens = 512;
    int max_new_tokens = 256;
    // Unset: `Settings::FromEnv()`.
    std::optional<Settings> settings;
    // Unset: `DeviceInventory::System()`.
    std::shared_ptr<DeviceInventory> inventory;
  };

  // SummarizationModelManager::Create()
  //
  // Reads and checks the folder (every weight the config names, its tokenizer) and sizes the
  // pools. `NotFound` for a missing file, `InvalidArgument` for a malformed one, a float16
  // dtype or limits below 1, `FailedPrecondition` for `force_gpu` when no GPU is usable
  // (none present, or a libtorch without CUDA). GPUs that this libtorch cannot use (a
  // CPU-only build) are ignored with a logged warning, and instances run on the CPU.
  static absl::StatusOr<std::unique_ptr<SummarizationModelManager>> Create(Options options);

  ~SummarizationModelManager() override;

  // The model folder's name.
  std::string model_name() const override;
  std::string model_type() const override { return "summarization"; }

  // SummarizationModelManager::Summarize()
  //
  // Leases an instance for up to `timeout` and summarizes `texts` on it; fails as `Acquire()`
  // and `SummarizationModel::Summarize()` do.
  absl::StatusOr<std::vector<std::string>> Summarize(absl::Span<const std::string> texts,
                                                     const GenerationOptions& options = {},
                                                     absl::Duration timeout = absl::Minutes(1));

 protected:
  absl::StatusOr<std::unique_ptr<SummarizationModel>> LoadInstance(const Device& device) override;
  int64_t EstimateInstanceBytes() const override;
  // Measurements are kept per dtype. The estimate stays one number, all of it per instance, until
  // instances on a device share their weights.
  std::string footprint_variant(const Device& device) const override;
  void ReleaseCachedMemory(const Device& device) override;

 private:
  SummarizationModelManager(Options options, Settings settings,
                            std::shared_ptr<DeviceInventory> inventory,
                            std::shared_ptr<const T5Folder> folder);
  DType DTypeFor(const Device& device) const;

  const Options options_;
  const std::shared_ptr<const T5Folder> folder_;
};

}  // namespace modelpool

#endif  // MODELPOOL_MANAGERS_SUMMARIZATION_MODEL_MANAGER_H_
