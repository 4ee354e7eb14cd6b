#ifndef MODELPOOL_LIB_MODELS_BART_BART_CONFIG_H_
#define MODELPOOL_LIB_MODELS_BART_BART_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "lib/models/generation/generation_defaults.h"

namespace modelpool {

// The nonlinearity of BART's feed-forward blocks (`activation_function`).
enum class BartActivation {
  kGelu,      // "gelu": the exact, erf-based one (bart-large, bart-large-cnn)
  kGeluTanh,  // "gelu_new", "gelu_fast", "gelu_pytorch_tanh"
  kRelu,      // "relu"
  kSilu,      // "silu", "swish"
};

// BartConfig
//
// The architecture of a BART model (transformers' BartForConditionalGeneration), read from
// a Hugging Face `config.json`, with the token ids that `generation_config.json` may
// override applied on top. Post-LayerNorm blocks, learned positions offset by 2, a LayerNorm
// on the embeddings, no final LayerNorm: BART's layout, not mBART's.
struct BartConfig {
  int64_t vocab_size = 50265;
  int64_t d_model = 1024;
  int64_t encoder_layers = 12;
  int64_t decoder_layers = 12;
  int64_t encoder_attention_heads = 16;
  int64_t decoder_attention_heads = 16;
  int64_t encoder_ffn_dim = 4096;
  int64_t decoder_ffn_dim = 4096;
  // Positions a sequence may take; the table has 2 rows more (BART's offset).
  int64_t max_position_embeddings = 1024;
  BartActivation activation = BartActivation::kGelu;
  // Token embeddings are multiplied by sqrt(d_model).
  bool scale_embedding = false;
  // The output projection is the decoder's embedding when the checkpoint has no
  // lm_head.weight and this is set.
  bool tie_word_embeddings = true;
  GenerationTokenIds ids = {.decoder_start_token_id = 2, .pad_token_id = 1, .eos_token_ids = {2}};

  // BART's LayerNorms are torch's defaults.
  static constexpr double kLayerNormEps = 1e-5;
  // Position p of a sequence reads row p + kPositionOffset of the position table.
  static constexpr int64_t kPositionOffset = 2;
};

struct BartFiles {
  BartConfig config;
  GenerationDefaults generation;
};

// ReadBartFiles()
//
// Reads `config.json` (required) and the generation settings of `model_dir`
// (`ReadGenerationDefaults()`). `NotFound` when config.json is missing; `InvalidArgument`,
// naming the file and the key, for a `model_type` other than "bart", sizes out of range, an
// unknown `activation_function`, an mBART-style layout (`normalize_before`,
// `add_final_layer_norm`) or a token id outside the vocabulary. Absent keys take the defaults
// of transformers' BartConfig.
absl::StatusOr<BartFiles> ReadBartFiles(const std::string& model_dir);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BART_BART_CONFIG_H_
