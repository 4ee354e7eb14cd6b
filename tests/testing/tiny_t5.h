#ifndef MODELPOOL_TESTS_TESTING_TINY_T5_H_
#define MODELPOOL_TESTS_TESTING_TINY_T5_H_

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/testing/safetensors_writer.h"
#include "tests/testing/temp_dir.h"

namespace modelpool::testing {

// How to make a tiny random-weight T5 folder.
struct TinyT5 {
  bool gated = false;
  bool tied = true;
  int64_t vocab_size = 48;
  int64_t d_model = 16;
  int64_t d_kv = 4;
  int64_t num_heads = 2;
  int64_t d_ff = 24;
  int64_t num_layers = 2;
  uint64_t seed = 7;
  std::set<std::string> drop;                           // tensors left out of the file
  std::map<std::string, std::string> rename;            // tensors stored under another name
  std::map<std::string, std::vector<int64_t>> reshape;  // tensors stored with another shape
};

// Writes config.json, generation_config.json and model.safetensors of a random T5 into a fresh
// folder named `name` under the temporary directory; returns the folder.
inline std::string WriteTinyT5(const std::string& name, const TinyT5& t) {
  const std::filesystem::path dir = TempDir(name);
  nlohmann::json config = {{"model_type", "t5"},
                           {"vocab_size", t.vocab_size},
                           {"d_model", t.d_model},
                           {"d_kv", t.d_kv},
                           {"d_ff", t.d_ff},
                           {"num_heads", t.num_heads},
                           {"num_layers", t.num_layers},
                           {"num_decoder_layers", t.num_layers},
                           {"relative_attention_num_buckets", 8},
                           {"relative_attention_max_distance", 20},
                           {"feed_forward_proj", t.gated ? "gated-gelu" : "relu"},
                           {"tie_word_embeddings", t.tied},
                           {"decoder_start_token_id", 0},
                           {"pad_token_id", 0},
                           {"eos_token_id", 1}};
  std::ofstream(dir / "config.json") << config.dump(2);
  std::ofstream(dir / "generation_config.json")
      << R"({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})";

  at::manual_seed(t.seed);
  const int64_t inner = t.num_heads * t.d_kv;
  std::map<std::string, at::Tensor> w;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, double scale) {
    w[n] = at::randn(shape) * scale;
  };
  auto norm = [&](const std::string& n) { w[n] = 1.0 + 0.1 * at::randn({t.d_model}); };
  auto ff = [&](const std::string& p) {
    if (t.gated) {
      add(p + "wi_0.weight", {t.d_ff, t.d_model}, 0.3);
      add(p + "wi_1.weight", {t.d_ff, t.d_model}, 0.3);
    } else {
      add(p + "wi.weight", {t.d_ff, t.d_model}, 0.3);
    }
    add(p + "wo.weight", {t.d_model, t.d_ff}, 0.3);
  };
  auto attention = [&](const std::string& p) {
    for (const char* m : {"q", "k", "v"}) add(p + m + ".weight", {inner, t.d_model}, 0.3);
    add(p + "o.weight", {t.d_model, inner}, 0.3);
  };
  add("shared.weight", {t.vocab_size, t.d_model}, 1.0);
  if (!t.tied) add("lm_head.weight", {t.vocab_size, t.d_model}, 0.3);
  for (int64_t i = 0; i < t.num_layers; ++i) {
    const std::string e = absl::StrCat("encoder.block.", i, ".layer.");
    attention(e + "0.SelfAttention.");
    norm(e + "0.layer_norm.weight");
    ff(e + "1.DenseReluDense.");
    norm(e + "1.layer_norm.weight");
    const std::string d = absl::StrCat("decoder.block.", i, ".layer.");
    attention(d + "0.SelfAttention.");
    norm(d + "0.layer_norm.weight");
    attention(d + "1.EncDecAttention.");
    norm(d + "1.layer_norm.weight");
    ff(d + "2.DenseReluDense.");
    norm(d + "2.layer_norm.weight");
  }
  add("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {8, t.num_heads},
      1.0);
  add("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {8, t.num_heads},
      1.0);
  norm("encoder.final_layer_norm.weight");
  norm("decoder.final_layer_norm.weight");

  std::map<std::string, at::Tensor> stored;
  for (auto& [n, tensor] : w) {
    if (t.drop.count(n) > 0) continue;
    at::Tensor value = tensor;
    if (auto it = t.reshape.find(n); it != t.reshape.end()) value = at::zeros(it->second);
    auto renamed = t.rename.find(n);
    stored[renamed == t.rename.end() ? n : renamed->second] = value;
  }
  WriteSafetensors((dir / "model.safetensors").string(), stored);
  return dir.string();
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_TINY_T5_H_
