#ifndef MODELPOOL_TESTS_TESTING_TINY_BART_H_
#define MODELPOOL_TESTS_TESTING_TINY_BART_H_

#include <cstdint>
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

// How to make a tiny random-weight BART folder (BartForConditionalGeneration's names).
struct TinyBart {
  int64_t vocab_size = 48;
  int64_t d_model = 16;
  int64_t heads = 2;
  int64_t ffn = 24;
  int64_t encoder_layers = 2;
  int64_t decoder_layers = 2;
  int64_t max_positions = 40;
  std::string activation = "gelu";
  bool scale_embedding = false;
  bool tied = true;               // no lm_head.weight
  bool final_logits_bias = true;  // 0.05 * (id % 7), so that it shows in the logits
  std::string prefix = "model.";  // "" for a BartModel checkpoint
  // The BPE tokenizer of tests/data/text/bpe (the vocabulary becomes its 4261 ids).
  bool tokenizer = false;
  nlohmann::json config_extra = nlohmann::json::object();  // merged into config.json
  std::string generation_config;  // generation_config.json's text, when not empty
  uint64_t seed = 11;
  std::set<std::string> drop;                           // tensors left out of the file
  std::map<std::string, std::string> rename;            // tensors stored under another name
  std::map<std::string, std::vector<int64_t>> reshape;  // tensors stored with another shape
};

// Writes config.json, model.safetensors and, as asked, generation_config.json and the
// tokenizer of a random BART into a fresh folder named `name` under the temporary directory;
// returns the folder. Ids: <s> 0, <pad> 1, </s> 2 (also the decoder start).
inline std::string WriteTinyBart(const std::string& name, const TinyBart& t) {
  const std::filesystem::path dir = TempDir(name);
  const int64_t vocab = t.tokenizer ? 4261 : t.vocab_size;
  nlohmann::json config = {{"model_type", "bart"},
                           {"vocab_size", vocab},
                           {"d_model", t.d_model},
                           {"encoder_layers", t.encoder_layers},
                           {"decoder_layers", t.decoder_layers},
                           {"encoder_attention_heads", t.heads},
                           {"decoder_attention_heads", t.heads},
                           {"encoder_ffn_dim", t.ffn},
                           {"decoder_ffn_dim", t.ffn},
                           {"max_position_embeddings", t.max_positions},
                           {"activation_function", t.activation},
                           {"scale_embedding", t.scale_embedding},
                           {"tie_word_embeddings", t.tied},
                           {"bos_token_id", 0},
                           {"pad_token_id", 1},
                           {"eos_token_id", 2},
                           {"decoder_start_token_id", 2}};
  if (t.config_extra.is_object()) config.update(t.config_extra);
  std::ofstream(dir / "config.json") << config.dump(2);
  if (!t.generation_config.empty()) {
    std::ofstream(dir / "generation_config.json") << t.generation_config;
  }
  if (t.tokenizer) {
    const std::filesystem::path bpe =
        std::filesystem::path(MODELPOOL_SOURCE_DIR) / "tests/data/text/bpe";
    for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
      std::filesystem::copy_file(bpe / file, dir / file,
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }

  at::manual_seed(t.seed);
  const int64_t d = t.d_model;
  std::map<std::string, at::Tensor> w;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, double scale) {
    w[t.prefix + n] = at::randn(shape) * scale;
  };
  auto linear = [&](const std::string& n, int64_t rows, int64_t columns) {
    add(n + ".weight", {rows, columns}, 0.4);
    add(n + ".bias", {rows}, 0.1);
  };
  auto norm = [&](const std::string& n) {
    w[t.prefix + n + ".weight"] = 1.0 + 0.1 * at::randn({d});
    w[t.prefix + n + ".bias"] = 0.1 * at::randn({d});
  };
  auto attention = [&](const std::string& n) {
    for (const char* m : {"q_proj", "k_proj", "v_proj", "out_proj"}) linear(n + m, d, d);
  };
  add("shared.weight", {vocab, d}, 1.0);
  for (const char* stack : {"encoder", "decoder"}) {
    const std::string s = stack;
    add(s + ".embed_positions.weight", {t.max_positions + 2, d}, 0.5);
    norm(s + ".layernorm_embedding");
    const int64_t layers = s == "encoder" ? t.encoder_layers : t.decoder_layers;
    for (int64_t i = 0; i < layers; ++i) {
      const std::string l = absl::StrCat(s, ".layers.", i, ".");
      attention(l + "self_attn.");
      norm(l + "self_attn_layer_norm");
      if (s == "decoder") {
        attention(l + "encoder_attn.");
        norm(l + "encoder_attn_layer_norm");
      }
      linear(l + "fc1", t.ffn, d);
      linear(l + "fc2", d, t.ffn);
      norm(l + "final_layer_norm");
    }
  }
  if (!t.tied) w["lm_head.weight"] = at::randn({vocab, d}) * 0.5;
  if (t.final_logits_bias) {
    w["final_logits_bias"] =
        (at::arange(vocab).remainder(7).to(at::kFloat) * 0.05).view({1, vocab});
  }

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

#endif  // MODELPOOL_TESTS_TESTING_TINY_BART_H_
