#ifndef MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_FOLDER_H_
#define MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_FOLDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ATen/Tensor.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "c10/core/impl/VirtualGuardImpl.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/generation/encoder_decoder.h"
#include "lib/models/generation/encoder_decoder_summarizer.h"
#include "lib/models/shared_per_device.h"
#include "lib/models/summarizer_folder.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {

// EncoderDecoderFolder
//
// What the folders of encoder-decoder architectures share: their `SummarizerSpec`, and
// instances made of an `EncoderDecoderSummarizer` around the architecture's `EncoderDecoder`
// (`MakeModel`). Thread-safe, as `SummarizerFolder`.
class EncoderDecoderFolder : public SummarizerFolder {
 public:
  const std::string& model_dir() const override { return spec_->model_dir; }
  const std::string& name() const override { return spec_->name; }

  // `CheckDType`, then `LoadSummarizer` (float16 on the CPU computes in float32), then on a
  // GPU `WarmUp`.
  absl::StatusOr<std::unique_ptr<SummarizationModel>> Load(
      const Device& device, DType dtype, const SummarizerLimits& limits) const override;

  // An instance on `device` in `dtype`, for inspecting its numerics and resolved options.
  absl::StatusOr<std::unique_ptr<EncoderDecoderSummarizer>> LoadSummarizer(
      c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const;

  const SummarizerSpec& spec() const { return *spec_; }

 protected:
  // The architecture's model on `device` in `dtype` with caches for `limits`, sharing the
  // folder's weights there. Runs on the instance's stream, in inference mode.
  virtual absl::StatusOr<std::unique_ptr<EncoderDecoder>> MakeModel(
      c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const = 0;

  // Bytes of the float32 scores over the vocabulary that search keeps for every beam.
  int64_t ScoresBytes(const SummarizerLimits& limits) const;

  // The tokenizer of `model_dir`, or null when it has none; other errors as LoadTokenizer's.
  static absl::StatusOr<std::shared_ptr<const Tokenizer>> ReadTokenizer(
      const std::string& model_dir);

  std::shared_ptr<const SummarizerSpec> spec_;
};

// LoadShared()
//
// The weights in `cache` for `device` and `dtype`, loaded by `load` when no instance holds
// them; a device's copies are complete before other instances read them on their own streams.
template <typename Weights>
absl::StatusOr<std::shared_ptr<const Weights>> LoadShared(
    SharedPerDevice<Weights>& cache, c10::Device device, at::ScalarType dtype,
    const std::function<absl::StatusOr<std::shared_ptr<const Weights>>()>& load) {
  return cache.Get(absl::StrCat(device.str(), "/", c10::toString(dtype)),
                   [&]() -> absl::StatusOr<std::shared_ptr<const Weights>> {
                     absl::StatusOr<std::shared_ptr<const Weights>> weights = load();
                     if (weights.ok() && !device.is_cpu()) {
                       c10::impl::VirtualGuardImpl(device.type()).getStream(device).synchronize();
                     }
                     return weights;
                   });
}

// ArchitectureFolder
//
// The part of an encoder-decoder folder that depends on its architecture only through types:
// `Files` (what `Read<Arch>Files` returns: `config` among them) and `Weights` (with static
// `Bytes(config, dtype)` and `Load(config, checkpoint, device, dtype)`). Holds the files, the
// memory-mapped checkpoint and the weights on each device, loaded by the first instance there.
template <typename Files, typename Weights>
class ArchitectureFolder : public EncoderDecoderFolder {
 public:
  // bfloat16 on a GPU, float32 on the CPU.
  DType DefaultDType(const Device& device) const override {
    return device.is_cuda() ? DType::kBFloat16 : DType::kFloat32;
  }
  int64_t WeightBytes(DType dtype) const override {
    return Weights::Bytes(files_.config, ToTorchType(dtype));
  }

  // The weights on `device` in `dtype`, shared by the instances there while any holds them.
  absl::StatusOr<std::shared_ptr<const Weights>> LoadWeights(c10::Device device,
                                                             at::ScalarType dtype) const {
    return LoadShared<Weights>(weights_, device, dtype, [&] {
      return Weights::Load(files_.config, *checkpoint_, device, dtype);
    });
  }

  const Files& files() const { return files_; }

 protected:
  // `folder` as a `SummarizerFolder`, or `NotFound` naming `tokenizer_files` when it has no
  // tokenizer: what the registry's `Open` needs.
  static absl::StatusOr<std::shared_ptr<const SummarizerFolder>> WithTokenizer(
      absl::StatusOr<std::shared_ptr<const EncoderDecoderFolder>> folder,
      const std::string& model_dir, const char* tokenizer_files) {
    if (!folder.ok()) return folder.status();
    if ((*folder)->spec().tokenizer == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(model_dir, " has no tokenizer (", tokenizer_files, ")"));
    }
    return std::shared_ptr<const SummarizerFolder>(*std::move(folder));
  }

  Files files_;
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
  mutable SharedPerDevice<Weights> weights_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_FOLDER_H_
