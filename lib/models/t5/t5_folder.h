#ifndef MODELPOOL_LIB_MODELS_T5_T5_FOLDER_H_
#define MODELPOOL_LIB_MODELS_T5_T5_FOLDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/generation/encoder_decoder_folder.h"
#include "lib/models/t5/t5_config.h"
#include "lib/models/t5/t5_model.h"

namespace modelpool {

// T5Folder
//
// A T5 model folder, read once and shared by every instance: its configuration and generation
// defaults, the memory-mapped weights (checked against the configuration), the tokenizer, and
// the weights on each device, loaded by the first instance there. Thread-safe.
class T5Folder : public ArchitectureFolder<T5Files, T5Weights> {
 public:
  // Reads config.json, the generation settings and the weights' headers of `model_dir`,
  // checks every weight the config calls for, and loads the tokenizer when the folder has one.
  // `name` is what messages call the model (the folder's last component when empty).
  static absl::StatusOr<std::shared_ptr<const T5Folder>> Read(const std::string& model_dir,
                                                              const std::string& name = "");
  // As `Read`, for lib/models/registry.cc; the tokenizer is required.
  static absl::StatusOr<std::shared_ptr<const SummarizerFolder>> Open(const std::string& model_dir,
                                                                      const std::string& name);

  absl::Status CheckDType(DType dtype) const override;
  int64_t InstanceBytes(DType dtype, const SummarizerLimits& limits) const override;

 protected:
  absl::StatusOr<std::unique_ptr<EncoderDecoder>> MakeModel(
      c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const override;

 private:
  T5Folder() = default;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_T5_T5_FOLDER_H_
