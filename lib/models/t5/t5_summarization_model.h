#ifndef MODELPOOL_LIB_MODELS_T5_T5_SUMMARIZATION_MODEL_H_
#define MODELPOOL_LIB_MODELS_T5_T5_SUMMARIZATION_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "c10/core/Stream.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/generation/generation.h"
#include "lib/models/shared_per_device.h"
#include "lib/models/summarizer_folder.h"
#include "lib/models/t5/t5_config.h"
#include "lib/models/t5/t5_model.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// T5Folder
//
// A T5 model folder, read once and shared by every instance: its configuration and generation
// defaults, the memory-mapped weights (checked against the configuration), the tokenizer, and
// the weights on each device, loaded by the first instance there. Thread-safe.
class T5Folder : public SummarizerFolder, public std::enable_shared_from_this<T5Folder> {
 public:
  // Reads config.json, generation_config.json and the weights' headers of `model_dir`, checks
  // every weight the config calls for, and loads the tokenizer when the folder has one.
  // Tensors of blocks the config does not use are named in a warning. `name` is what messages
  // call the model (the folder's last component when empty).
  static absl::StatusOr<std::shared_ptr<const T5Folder>> Read(const std::string& model_dir,
                                                              const std::string& name = "");
  // As `Read`, for lib/models/registry.cc; the tokenizer is required.
  static absl::StatusOr<std::shared_ptr<const SummarizerFolder>> Open(const std::string& model_dir,
                                                                      const std::string& name);

  const std::string& model_dir() const override { return model_dir_; }
  const std::string& name() const override { return name_; }
  absl::Status CheckDType(DType dtype) const override;
  DType DefaultDType(const Device& device) const override;
  int64_t WeightBytes(DType dtype) const override;
  int64_t InstanceBytes(DType dtype, const SummarizerLimits& limits) const override;
  absl::StatusOr<std::unique_ptr<SummarizationModel>> Load(
      const Device& device, DType dtype, const SummarizerLimits& limits) const override;

  // The weights on `device` in `dtype`, shared by the instances there while any holds them.
  absl::StatusOr<std::shared_ptr<const T5Weights>> LoadWeights(c10::Device device,
                                                               at::ScalarType dtype) const;

  const T5Files& files() const { return files_; }
  const SafetensorsCheckpoint& checkpoint() const { return *checkpoint_; }
  // Null when the folder has no tokenizer: Summarize() is then unavailable.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }

 private:
  T5Folder() = default;

  std::string model_dir_;
  std::string name_;
  T5Files files_;
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
  std::unique_ptr<Tokenizer> tokenizer_;
  mutable SharedPerDevice<T5Weights> weights_;
};

// T5SummarizationModel
//
// A `SummarizationModel` on a `T5Model`. On a CUDA device, every call runs on the instance's
// own stream.
class T5SummarizationModel : public SummarizationModel {
 public:
  static absl::StatusOr<std::unique_ptr<T5SummarizationModel>> Load(
      std::shared_ptr<const T5Folder> folder, c10::Device device, at::ScalarType dtype,
      const SummarizerLimits& limits);

  absl::StatusOr<std::vector<std::string>> Summarize(
      absl::Span<const std::string> texts, const GenerationOptions& options = {}) override;
  absl::StatusOr<std::vector<std::vector<int32_t>>> Generate(
      absl::Span<const std::vector<int32_t>> input_ids,
      const GenerationOptions& options = {}) override;
  Device device() const override;

  // Generates once at the instance's limits (batch, beams, input length), so that the
  // device's caching allocator holds the workspace of the largest batch from then on.
  absl::Status WarmUp();

  // The folder this instance was loaded from.
  const T5Folder& folder() const { return *folder_; }

  // The encoder's last hidden state and the first decoder step's logits (float32, on the CPU)
  // for one row of ids: for comparing numerics with a reference.
  absl::StatusOr<std::pair<at::Tensor, at::Tensor>> FirstStep(absl::Span<const int32_t> ids);

  // `options` with generation_config.json's and transformers' defaults filled in, checked
  // against the instance's limits.
  absl::StatusOr<SearchOptions> Resolve(const GenerationOptions& options) const;

 private:
  T5SummarizationModel(std::shared_ptr<const T5Folder> folder, std::unique_ptr<T5Model> model,
                       std::optional<c10::Stream> stream);
  absl::Status CheckRows(absl::Span<const std::vector<int32_t>> rows) const;
  // Ids [batch, length] and mask on the device for `rows`, right-padded.
  std::pair<at::Tensor, at::Tensor> Pad(absl::Span<const std::vector<int32_t>> rows) const;

  const std::shared_ptr<const T5Folder> folder_;
  const std::unique_ptr<T5Model> model_;
  const std::optional<c10::Stream> stream_;  // set on CUDA devices
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_T5_T5_SUMMARIZATION_MODEL_H_
