#include "lib/models/bert/bert_config.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

absl::StatusOr<BertActivation> ParseActivation(const JsonFile& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string act, file.String("hidden_act", "gelu"));
  if (act == "gelu") return BertActivation::kGelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    return BertActivation::kGeluTanh;
  }
  if (act == "relu") return BertActivation::kRelu;
  if (act == "silu" || act == "swish") return BertActivation::kSilu;
  return absl::InvalidArgumentError(absl::StrCat(
      file.path(), ": hidden_act '", act,
      "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu)"));
}

}  // namespace

absl::StatusOr<BertConfig> ReadBertConfig(const JsonFile& file) {
  const std::string& path = file.path();
  MODELPOOL_ASSIGN_OR_RETURN(const std::string positions,
                             file.String("position_embedding_type", "absolute"));
  if (positions != "absolute") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": position_embedding_type '", positions,
                                                   "' is not supported (absolute only)"));
  }
  BertConfig c;
  MODELPOOL_ASSIGN_OR_RETURN(c.vocab_size, file.PositiveInt("vocab_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.hidden_size, file.PositiveInt("hidden_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.num_hidden_layers, file.PositiveInt("num_hidden_layers"));
  MODELPOOL_ASSIGN_OR_RETURN(c.num_attention_heads, file.PositiveInt("num_attention_heads"));
  MODELPOOL_ASSIGN_OR_RETURN(c.intermediate_size, file.PositiveInt("intermediate_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.max_position_embeddings,
                             file.PositiveInt("max_position_embeddings"));
  MODELPOOL_ASSIGN_OR_RETURN(c.type_vocab_size, file.PositiveInt("type_vocab_size", 2));
  MODELPOOL_ASSIGN_OR_RETURN(c.pad_token_id, file.Int("pad_token_id", 0));
  MODELPOOL_ASSIGN_OR_RETURN(c.layer_norm_eps, file.Number("layer_norm_eps", 1e-12));
  MODELPOOL_ASSIGN_OR_RETURN(c.hidden_act, ParseActivation(file));
  if (c.hidden_size % c.num_attention_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": hidden_size ", c.hidden_size,
                                                   " is not a multiple of ", "num_attention_heads ",
                                                   c.num_attention_heads));
  }
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": pad_token_id ", c.pad_token_id,
                                                   " is outside the vocabulary of ", c.vocab_size));
  }
  if (!(c.layer_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": layer_norm_eps is ", c.layer_norm_eps, ", expected > 0"));
  }
  return c;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> BertTensors(const BertConfig& c) {
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"embeddings.word_embeddings.weight", {c.vocab_size, h}},
      {"embeddings.position_embeddings.weight", {c.max_position_embeddings, h}},
      {"embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}},
      {"embeddings.LayerNorm.weight", {h}},
      {"embeddings.LayerNorm.bias", {h}},
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("encoder.layer.", l, ".");
    for (const char* m : {"query", "key", "value"}) {
      t.push_back({absl::StrCat(p, "attention.self.", m, ".weight"), {h, h}});
      t.push_back({absl::StrCat(p, "attention.self.", m, ".bias"), {h}});
    }
    t.push_back({p + "attention.output.dense.weight", {h, h}});
    t.push_back({p + "attention.output.dense.bias", {h}});
    t.push_back({p + "attention.output.LayerNorm.weight", {h}});
    t.push_back({p + "attention.output.LayerNorm.bias", {h}});
    t.push_back({p + "intermediate.dense.weight", {i, h}});
    t.push_back({p + "intermediate.dense.bias", {i}});
    t.push_back({p + "output.dense.weight", {h, i}});
    t.push_back({p + "output.dense.bias", {h}});
    t.push_back({p + "output.LayerNorm.weight", {h}});
    t.push_back({p + "output.LayerNorm.bias", {h}});
  }
  return t;
}

}  // namespace modelpool
