#include "lib/models/generation/encoder_decoder_folder.h"

#include <utility>

#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {

absl::StatusOr<std::unique_ptr<SummarizationModel>> EncoderDecoderFolder::Load(
    const Device& device, DType dtype, const SummarizerLimits& limits) const {
  MODELPOOL_RETURN_IF_ERROR(CheckDType(dtype));
  // CPU kernels for float16 matrix products are missing or slow: float32 there, as for
  // embeddings.
  const DType computed = !device.is_cuda() && dtype == DType::kFloat16 ? DType::kFloat32 : dtype;
  MODELPOOL_ASSIGN_OR_RETURN(std::unique_ptr<EncoderDecoderSummarizer> model,
                             LoadSummarizer(ToTorchDevice(device), ToTorchType(computed), limits));
  // A GPU instance holds its workspace from now on, so that its footprint can be measured.
  if (device.is_cuda()) MODELPOOL_RETURN_IF_ERROR(model->WarmUp());
  return std::unique_ptr<SummarizationModel>(std::move(model));
}

absl::StatusOr<std::unique_ptr<EncoderDecoderSummarizer>> EncoderDecoderFolder::LoadSummarizer(
    c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const {
  return EncoderDecoderSummarizer::Load(spec_, device, limits,
                                        [&] { return MakeModel(device, dtype, limits); });
}

int64_t EncoderDecoderFolder::ScoresBytes(const SummarizerLimits& limits) const {
  return SaturatedBytes(4.0 * limits.max_batch_size * limits.max_num_beams *
                        static_cast<double>(spec_->vocab_size) * 4);
}

absl::StatusOr<std::shared_ptr<const Tokenizer>> EncoderDecoderFolder::ReadTokenizer(
    const std::string& model_dir) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(model_dir);
  if (tokenizer.ok()) return std::shared_ptr<const Tokenizer>(*std::move(tokenizer));
  if (tokenizer.status().code() == absl::StatusCode::kNotFound) {
    return std::shared_ptr<const Tokenizer>();
  }
  return tokenizer.status();
}

}  // namespace modelpool
