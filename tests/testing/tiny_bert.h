#ifndef MODELPOOL_TESTS_TESTING_TINY_BERT_H_
#define MODELPOOL_TESTS_TESTING_TINY_BERT_H_

// Small BERT model folders written by tests: a config, the sentence-transformers files and
// pseudo-random float32 weights, with knobs to break them.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "nlohmann/json.hpp"
#include "tests/testing/safetensors_writer.h"
#include "tests/testing/temp_dir.h"

namespace modelpool::testing {

struct TinyBertSpec {
  int64_t vocab = 20, hidden = 8, layers = 2, heads = 2, intermediate = 12, positions = 16;
  std::string hidden_act = "gelu";
  std::string prefix;                   // put before every tensor name, e.g. "bert."
  bool tf_layer_norms = false;          // LayerNorm.gamma / .beta instead of .weight / .bias
  std::string pooling = "mean_tokens";  // a pooling_mode_* suffix: cls_token, max_tokens, ...
  bool normalize = false;
  bool sentence_transformers = true;  // write modules.json and the pooling folder
  int64_t max_seq_length = 12;
  std::string model_type = "bert";
  int64_t pad_token_id = 0;
  // Rows put before the position table, filled with `first_position_rows_value` (RoBERTa's
  // pad_token_id + 1 rows); the random rows after them are those of a BERT of the same spec.
  int64_t first_position_rows = 0;
  double first_position_rows_value = 3.0;
  // Called with every tensor's name and values before it is written; may change the values.
  std::function<void(const std::string& name, at::Tensor& values)> fill;
  // Called with every tensor's name and shape before it is written; may change the shape, or
  // clear the name to leave the tensor out.
  std::function<void(std::string& name, std::vector<int64_t>& shape)> edit;
};

inline void WriteJson(const std::filesystem::path& path, const nlohmann::json& json) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << json.dump(2);
}

// Writes a model folder as `spec` says into `dir` (created; emptied first).
inline void WriteTinyBert(const std::filesystem::path& dir, const TinyBertSpec& spec) {
  namespace fs = std::filesystem;
  RemoveTree(dir);
  fs::create_directories(dir);
  WriteJson(dir / "config.json",
            {{"architectures", {"BertModel"}},
             {"model_type", spec.model_type},
             {"vocab_size", spec.vocab},
             {"hidden_size", spec.hidden},
             {"num_hidden_layers", spec.layers},
             {"num_attention_heads", spec.heads},
             {"intermediate_size", spec.intermediate},
             {"max_position_embeddings", spec.positions + spec.first_position_rows},
             {"type_vocab_size", 2},
             {"hidden_act", spec.hidden_act},
             {"layer_norm_eps", 1e-12},
             {"pad_token_id", spec.pad_token_id}});
  if (spec.sentence_transformers) {
    nlohmann::json modules = {{{"idx", 0},
                               {"name", "0"},
                               {"path", ""},
                               {"type", "sentence_transformers.models.Transformer"}},
                              {{"idx", 1},
                               {"name", "1"},
                               {"path", "1_Pooling"},
                               {"type", "sentence_transformers.models.Pooling"}}};
    if (spec.normalize) {
      modules.push_back({{"idx", 2},
                         {"name", "2"},
                         {"path", "2_Normalize"},
                         {"type", "sentence_transformers.models.Normalize"}});
    }
    WriteJson(dir / "modules.json", modules);
    WriteJson(dir / "1_Pooling" / "config.json",
              {{"word_embedding_dimension", spec.hidden}, {"pooling_mode_" + spec.pooling, true}});
    WriteJson(dir / "sentence_bert_config.json", {{"max_seq_length", spec.max_seq_length}});
  }
  const int64_t h = spec.hidden, i = spec.intermediate;
  at::manual_seed(7);
  std::map<std::string, at::Tensor> tensors;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    if (spec.tf_layer_norms && name.find("LayerNorm.") != std::string::npos) {
      const bool weight = name.ends_with(".weight");
      name = name.substr(0, name.rfind('.') + 1) + (weight ? "gamma" : "beta");
    }
    const bool positions = name == "embeddings.position_embeddings.weight";
    name = spec.prefix + name;
    if (spec.edit) spec.edit(name, shape);
    if (name.empty()) return;
    at::Tensor values = 0.5 * at::randn(shape);
    if (positions && spec.first_position_rows > 0) {
      values = at::cat(
          {at::full({spec.first_position_rows, h}, spec.first_position_rows_value), values});
    }
    if (spec.fill) spec.fill(name, values);
    tensors[name] = values;
  };
  add("embeddings.word_embeddings.weight", {spec.vocab, h});
  add("embeddings.position_embeddings.weight", {spec.positions, h});
  add("embeddings.token_type_embeddings.weight", {2, h});
  add("embeddings.LayerNorm.weight", {h});
  add("embeddings.LayerNorm.bias", {h});
  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"query", "key", "value"}) {
      add(p + "attention.self." + m + ".weight", {h, h});
      add(p + "attention.self." + m + ".bias", {h});
    }
    add(p + "attention.output.dense.weight", {h, h});
    add(p + "attention.output.dense.bias", {h});
    add(p + "attention.output.LayerNorm.weight", {h});
    add(p + "attention.output.LayerNorm.bias", {h});
    add(p + "intermediate.dense.weight", {i, h});
    add(p + "intermediate.dense.bias", {i});
    add(p + "output.dense.weight", {h, i});
    add(p + "output.dense.bias", {h});
    add(p + "output.LayerNorm.weight", {h});
    add(p + "output.LayerNorm.bias", {h});
  }
  add("pooler.dense.weight", {h, h});  // in real checkpoints; the encoder ignores it
  WriteSafetensors((dir / "model.safetensors").string(), tensors);
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_TINY_BERT_H_
