#ifndef MODELPOOL_LIB_MODELS_T5_T5_CONFIG_H_
#define MODELPOOL_LIB_MODELS_T5_T5_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/generation/generation_defaults.h"

namespace modelpool {

// The nonlinearity of a T5 feed-forward block.
enum class T5Activation {
  kRelu,      // "relu" (t5-small ... t5-large)
  kGeluTanh,  // "gelu_new" / "gelu_pytorch_tanh": what "gated-gelu" (flan-t5, T5 v1.1) means
  kGelu,      // "gelu": the exact, erf-based one
  kSilu,      // "silu" / "swish"
};

// T5Config
//
// The architecture of a T5-family model, read from a Hugging Face `config.json`, with the
// token ids that `generation_config.json` may override applied on top.
struct T5Config {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t d_kv = 0;
  int64_t d_ff = 0;
  int64_t num_heads = 0;
  int64_t num_layers = 0;          // encoder blocks
  int64_t num_decoder_layers = 0;  // defaults to num_layers
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  T5Activation activation = T5Activation::kRelu;
  bool gated = false;  // wi_0 and wi_1 ("gated-..."), else a single wi
  // The output projection is the input embedding when the checkpoint has no lm_head.weight
  // and this is set.
  bool tie_word_embeddings = true;
  // Scale the decoder output by d_model^-0.5 before the projection on the vocabulary, as
  // Mesh TensorFlow's T5 does with tied embeddings. See Note [T5 output scaling].
  bool scale_decoder_outputs = true;
  double layer_norm_epsilon = 1e-6;
  int64_t decoder_start_token_id = 0;
  int64_t pad_token_id = 0;
  std::vector<int64_t> eos_token_ids = {1};

  int64_t inner_dim() const { return num_heads * d_kv; }
};

struct T5Files {
  T5Config config;
  GenerationDefaults generation;
};

// ReadT5Files()
//
// Reads `config.json` (required) and the generation settings of `model_dir`
// (`ReadGenerationDefaults()`). `NotFound` when config.json is missing; `InvalidArgument`,
// naming the file and the key, for a model type other than T5/mT5, an unknown
// `feed_forward_proj`, sizes out of range or a token id outside the vocabulary. Absent keys
// take the defaults of transformers' T5Config.
absl::StatusOr<T5Files> ReadT5Files(const std::string& model_dir);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_T5_T5_CONFIG_H_
