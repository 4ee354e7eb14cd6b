#ifndef MODELPOOL_LIB_MODELS_BERT_BERT_CONFIG_H_
#define MODELPOOL_LIB_MODELS_BERT_BERT_CONFIG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/formats/json_file.h"

namespace modelpool {

enum class BertActivation { kGelu, kGeluTanh, kRelu, kSilu };

// The `config.json` fields of a BertModel that the encoder uses.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  BertActivation hidden_act = BertActivation::kGelu;
  // Added to every token's position before its embedding is looked up: 0 for BERT; RoBERTa
  // counts positions from `pad_token_id + 1`.
  int64_t position_offset = 0;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // The longest row there are position embeddings for.
  int64_t max_positions() const { return max_position_embeddings - position_offset; }
};

// ReadBertConfig()
//
// The fields of `file` (a BertModel's `config.json`). `InvalidArgument` naming the file and
// the key for a missing, mistyped or out-of-range value, or an unsupported activation or
// position embedding type.
absl::StatusOr<BertConfig> ReadBertConfig(const JsonFile& file);

// Every tensor a BertModel with `config` reads, by its state-dict name, with its shape.
std::vector<std::pair<std::string, std::vector<int64_t>>> BertTensors(const BertConfig& config);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BERT_BERT_CONFIG_H_
