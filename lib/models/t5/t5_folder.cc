#include "lib/models/t5/t5_folder.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/base/saturating.h"
#include "lib/models/formats/weights.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {

absl::StatusOr<std::shared_ptr<const T5Folder>> T5Folder::Read(const std::string& model_dir,
                                                               const std::string& name) {
  auto folder = std::shared_ptr<T5Folder>(new T5Folder());
  MODELPOOL_ASSIGN_OR_RETURN(folder->files_, ReadT5Files(model_dir));
  MODELPOOL_ASSIGN_OR_RETURN(folder->checkpoint_, SafetensorsCheckpoint::Open(model_dir));
  const T5Config& config = folder->files_.config;
  std::vector<std::string> unused;
  if (absl::Status weights = T5Weights::Check(config, *folder->checkpoint_, &unused);
      !weights.ok()) {
    return absl::Status(weights.code(), absl::StrCat(model_dir, ": ", weights.message()));
  }
  auto spec = std::make_shared<SummarizerSpec>();
  spec->model_dir = model_dir;
  spec->name = name.empty() ? ModelFolder{model_dir, model_dir}.label() : name;
  spec->vocab_size = config.vocab_size;
  spec->ids = {config.decoder_start_token_id, config.pad_token_id, config.eos_token_ids};
  spec->generation = folder->files_.generation;
  // T5 was trained with task prefixes; the summarization one when config.json has none.
  spec->prefix = folder->files_.generation.prefix.value_or("summarize: ");
  MODELPOOL_ASSIGN_OR_RETURN(spec->tokenizer, ReadTokenizer(model_dir));
  WarnOfUnusedTensors(spec->name, unused);
  folder->spec_ = std::move(spec);
  return std::shared_ptr<const T5Folder>(std::move(folder));
}

absl::StatusOr<std::shared_ptr<const SummarizerFolder>> T5Folder::Open(const std::string& model_dir,
                                                                       const std::string& name) {
  return WithTokenizer(Read(model_dir, name), model_dir, "spiece.model or tokenizer.json");
}

absl::Status T5Folder::CheckDType(DType dtype) const {
  if (dtype == DType::kFloat16) {
    return absl::InvalidArgumentError(
        "T5 does not run in float16: its activations overflow the float16 range (use bfloat16 "
        "or float32)");
  }
  return absl::OkStatus();
}

int64_t T5Folder::InstanceBytes(DType dtype, const SummarizerLimits& limits) const {
  const T5Config& c = files_.config;
  const int64_t element = static_cast<int64_t>(c10::elementSize(ToTorchType(dtype)));
  // The largest transient tensors: the encoder's attention scores with their bias, its
  // feed-forward activations, and the float32 scores over the vocabulary of every beam.
  // Saturating: the limits come from the user.
  const int64_t tokens = SaturatingMul(limits.max_batch_size, limits.max_input_tokens);
  const int64_t workspace = SaturatingSum(
      {SaturatingProduct({3, tokens, c.num_heads, limits.max_input_tokens, element}),
       SaturatingProduct({2, tokens, c.gated ? 2 : 1, c.d_ff, element}), ScoresBytes(limits)});
  return SaturatingAdd(T5Model::CacheBytes(c, ToTorchType(dtype), limits), workspace);
}

absl::StatusOr<std::unique_ptr<EncoderDecoder>> T5Folder::MakeModel(
    c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const {
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const T5Weights> weights, LoadWeights(device, dtype));
  return std::make_unique<T5Model>(files_.config, std::move(weights), device, dtype, limits);
}

}  // namespace modelpool
