#include "lib/models/bart/bart_folder.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {

absl::StatusOr<std::shared_ptr<const BartFolder>> BartFolder::Read(const std::string& model_dir,
                                                                   const std::string& name) {
  auto folder = std::shared_ptr<BartFolder>(new BartFolder());
  MODELPOOL_ASSIGN_OR_RETURN(folder->files_, ReadBartFiles(model_dir));
  MODELPOOL_ASSIGN_OR_RETURN(folder->checkpoint_, SafetensorsCheckpoint::Open(model_dir));
  const BartConfig& config = folder->files_.config;
  if (absl::Status weights = BartWeights::Check(config, *folder->checkpoint_); !weights.ok()) {
    return absl::Status(weights.code(), absl::StrCat(model_dir, ": ", weights.message()));
  }
  auto spec = std::make_shared<SummarizerSpec>();
  spec->model_dir = model_dir;
  spec->name = name.empty() ? ModelFolder{model_dir, model_dir}.label() : name;
  spec->vocab_size = config.vocab_size;
  spec->ids = config.ids;
  spec->generation = folder->files_.generation;
  spec->prefix = folder->files_.generation.prefix.value_or("");
  MODELPOOL_ASSIGN_OR_RETURN(spec->tokenizer, ReadTokenizer(model_dir));
  folder->spec_ = std::move(spec);
  return std::shared_ptr<const BartFolder>(std::move(folder));
}

absl::StatusOr<std::shared_ptr<const SummarizerFolder>> BartFolder::Open(
    const std::string& model_dir, const std::string& name) {
  return WithTokenizer(Read(model_dir, name), model_dir,
                       "tokenizer.json, or vocab.json and merges.txt");
}

// BART was trained in float32 and published in float32 or float16; its post-LayerNorm blocks
// keep activations in range, so every compute type runs (transformers clamps the encoder's
// float16 activations, and so does BartModel).
absl::Status BartFolder::CheckDType(DType) const { return absl::OkStatus(); }

SummarizerLimits BartFolder::WithinPositions(const SummarizerLimits& limits) const {
  // Inputs and outputs cannot be longer than the positions the model has: the instance's
  // limits stop there, and longer requests are refused as any beyond its limits are.
  const int64_t positions = files_.config.max_position_embeddings;
  SummarizerLimits within = limits;
  within.max_input_tokens = std::min(limits.max_input_tokens, positions);
  within.max_new_tokens = std::min(limits.max_new_tokens, positions);
  return within;
}

int64_t BartFolder::InstanceBytes(DType dtype, const SummarizerLimits& asked) const {
  const BartConfig& c = files_.config;
  const SummarizerLimits limits = WithinPositions(asked);
  const double element = static_cast<double>(c10::elementSize(ToTorchType(dtype)));
  // The largest transient tensors: the encoder's attention scores, its feed-forward
  // activations, and the float32 scores over the vocabulary of every beam.
  const double tokens = static_cast<double>(limits.max_batch_size) * limits.max_input_tokens;
  const double workspace =
      3 * tokens * c.encoder_attention_heads * limits.max_input_tokens * element +
      2 * tokens * c.encoder_ffn_dim * element;
  return SaturatedBytes(workspace + static_cast<double>(ScoresBytes(limits)) +
                        static_cast<double>(BartModel::CacheBytes(c, ToTorchType(dtype), limits)));
}

absl::StatusOr<std::unique_ptr<EncoderDecoder>> BartFolder::MakeModel(
    c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits) const {
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const BartWeights> weights,
                             LoadWeights(device, dtype));
  return std::make_unique<BartModel>(files_.config, std::move(weights), device, dtype,
                                     WithinPositions(limits));
}

}  // namespace modelpool
