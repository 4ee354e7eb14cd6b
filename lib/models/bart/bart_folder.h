#ifndef MODELPOOL_LIB_MODELS_BART_BART_FOLDER_H_
#define MODELPOOL_LIB_MODELS_BART_BART_FOLDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/bart/bart_config.h"
#include "lib/models/bart/bart_model.h"
#include "lib/models/generation/encoder_decoder_folder.h"

namespace modelpool {

// BartFolder
//
// A BART model folder (facebook/bart-large-cnn, sshleifer/distilbart-cnn-12-6...), read once
// and shared by every instance: its configuration and generation defaults, the memory-mapped
// weights (checked against the configuration), the tokenizer, and the weights on each device,
// loaded by the first instance there. Thread-safe.
class BartFolder : public ArchitectureFolder<BartFiles, BartWeights> {
 public:
  // Reads config.json, the generation settings and the weights' headers of `model_dir`,
  // checks every weight the config calls for, and loads the tokenizer when the folder has one.
  // `name` is what messages call the model (the folder's last component when empty).
  static absl::StatusOr<std::shared_ptr<const BartFolder>> Read(const std::string& model_dir,
                                                                const std::string& name = "");
  // As `Read`, for lib/models/registry.cc; the tokenizer is required.
  static absl::StatusOr<std::shared_ptr<const SummarizerFolder>> Open(const std::string& model_dir,
                                                                      const std::string& name);

  absl::Status CheckDType(DType dtype) const override;
  int64_t InstanceBytes(DType dtype, const SummarizerLimits& limits) const override;

 protected:
  // The instance's input and new tokens stop at max_position_embeddings, below `limits`.
  absl::StatusOr<std::unique_ptr<EncoderDecoder>> MakeModel(
      c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const override;

 private:
  BartFolder() = default;
  // `limits` with the input and new tokens at most max_position_embeddings.
  SummarizerLimits WithinPositions(const SummarizerLimits& limits) const;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BART_BART_FOLDER_H_
