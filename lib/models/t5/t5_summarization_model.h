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
#include "lib/models/t5/t5_config.h"
#include "lib/models/t5/t5_model.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// A T5 model folder, parsed once and shared by every instance: immutable, so thread-safe.
struct T5Folder {
  std::string model_dir;
  T5Files files;
  std::unique_ptr<SafetensorsCheckpoint> checkpoint;  // memory-mapped weights
  std::unique_ptr<Tokenizer> tokenizer;               // null: Summarize() is unavailable

  // Reads config.json, generation_config.json and the weights' headers of `model_dir`, and
  // checks every weight the config calls for. Does not load the tokenizer.
  static absl::StatusOr<std::unique_ptr<T5Folder>> Open(const std::string& model_dir);
};

// T5SummarizationModel
//
// A `SummarizationModel` on a `T5Model`. On a CUDA device, every call runs on the instance's
// own stream.
class T5SummarizationModel : public SummarizationModel {
 public:
  static absl::StatusOr<std::unique_ptr<T5SummarizationModel>> Load(
      std::shared_ptr<const T5Folder> folder, c10::Device device, at::ScalarType dtype,
      const T5Limits& limits);

  absl::StatusOr<std::vector<std::string>> Summarize(
      absl::Span<const std::string> texts, const GenerationOptions& options = {}) override;
  absl::StatusOr<std::vector<std::vector<int32_t>>> Generate(
      absl::Span<const std::vector<int32_t>> input_ids,
      const GenerationOptions& options = {}) override;
  Device device() const override;

  // Generates once at the instance's limits (batch, beams, input length), so that the
  // device's caching allocator holds the workspace of the largest batch from then on.
  absl::Status WarmUp();

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
