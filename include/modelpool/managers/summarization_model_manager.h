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
#include "modelpool/base/model_folder.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool {

class SummarizerFolder;

// SummarizationModelManager
//
// Pools of instances of one encoder-decoder summarization model, loaded from a Hugging Face
// folder as published: config.json (whose `model_type` picks the architecture: "t5" and "mt5"
// for t5-small to t5-large, flan-t5 and mT5; "bart" for bart-large-cnn and distilbart),
// model.safetensors (or its shards), the tokenizer, and the generation defaults
// (generation_config.json, else the generation keys of config.json). The folder is read
// once, at `Create`; instances on one device share the weights there, and each allocates its
// caches for the limits below, so an instance's footprint is fixed: the pools are sized from
// free VRAM and the footprint measured on the first GPU load.
//
// Compute types: bfloat16 (the default on GPUs) and float32 (the default on the CPU); BART
// also float16. T5 refuses float16: its activations overflow that range (transformers clamps
// them; the results are still wrong for many checkpoints).
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
    // A model folder, or a Hugging Face id (`org/name`, optional `@revision`) in the local
    // cache; see `FindModelFolder()`. Messages name the model by it.
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
  // pools. `NotFound` for a missing file (or a model missing from the cache, saying where it
  // looked), `InvalidArgument` for a malformed one, a float16 dtype, limits below 1 or limits
  // so large that an instance could not be planned (naming them), `FailedPrecondition` for
  // `force_gpu` when no GPU is usable (none present, or a libtorch without CUDA). GPUs that this
  // libtorch cannot use (a CPU-only build) are ignored with a logged warning, and instances run on
  // the CPU.
  static absl::StatusOr<std::unique_ptr<SummarizationModelManager>> Create(Options options);

  ~SummarizationModelManager() override;

  // The model's Hugging Face id when it was found by one, else its folder's last component.
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
  // The weights, shared by the instances on a device, and each instance's caches and workspace.
  MemoryFootprint EstimateFootprint(const Device& device) const override;
  // Measurements are kept per dtype. The estimate stays one number, all of it per instance, until
  // instances on a device share their weights.
  std::string footprint_variant(const Device& device) const override;
  void ReleaseCachedMemory(const Device& device) override;

 private:
  SummarizationModelManager(Options options, Settings settings,
                            std::shared_ptr<DeviceInventory> inventory, ModelFolder model_folder,
                            std::shared_ptr<const SummarizerFolder> folder);
  DType DTypeFor(const Device& device) const;
  // `InvalidArgument` naming the limits when an instance's estimate is beyond planning.
  absl::Status CheckInstanceBytes() const;

  const Options options_;
  const ModelFolder model_folder_;
  const std::shared_ptr<const SummarizerFolder> folder_;
};

}  // namespace modelpool

#endif  // MODELPOOL_MANAGERS_SUMMARIZATION_MODEL_MANAGER_H_
