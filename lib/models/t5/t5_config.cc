#include "lib/models/t5/t5_config.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/formats/json_file.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

absl::Status Invalid(const JsonFile& file, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", what));
}

// The largest size or count a config may give: any real model is far below it, and products
// of two such numbers cannot overflow int64.
constexpr int64_t kMaxSize = (int64_t{1} << 31) - 1;

// A required integer from `min` to `kMaxSize`.
absl::Status ReadPositive(const JsonFile& file, const std::string& key, int64_t* out,
                          std::optional<int64_t> fallback = {}, int64_t min = 1) {
  MODELPOOL_ASSIGN_OR_RETURN(*out, file.Int(key, fallback));
  if (*out < min || *out > kMaxSize) {
    return Invalid(file, absl::StrCat(key, " is ", *out, ", expected ", min, " to ", kMaxSize));
  }
  return absl::OkStatus();
}

absl::StatusOr<T5Activation> ParseActivation(const JsonFile& file, const std::string& key,
                                             const std::string& name) {
  if (name == "relu") return T5Activation::kRelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return T5Activation::kGeluTanh;
  }
  if (name == "gelu") return T5Activation::kGelu;
  if (name == "silu" || name == "swish") return T5Activation::kSilu;
  return Invalid(
      file, absl::StrCat(key, " \"", name, "\" is not supported (relu, gelu, gelu_new, silu)"));
}

absl::Status ReadTokenIds(const JsonFile& file, T5Config* config) {
  GenerationTokenIds ids{config->decoder_start_token_id, config->pad_token_id,
                         config->eos_token_ids};
  MODELPOOL_RETURN_IF_ERROR(ReadGenerationTokenIds(file, &ids));
  config->decoder_start_token_id = ids.decoder_start_token_id;
  config->pad_token_id = ids.pad_token_id;
  config->eos_token_ids = std::move(ids.eos_token_ids);
  return absl::OkStatus();
}

absl::StatusOr<T5Config> ParseConfig(const JsonFile& file) {
  T5Config c;
  MODELPOOL_ASSIGN_OR_RETURN(const std::string model_type, file.String("model_type", "t5"));
  if (model_type != "t5" && model_type != "mt5") {
    return Invalid(file,
                   absl::StrCat("model_type \"", model_type, "\" is not a T5 model (t5 or mt5)"));
  }
  // Absent sizes take transformers' T5Config defaults (t5-small's), as transformers does.
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "vocab_size", &c.vocab_size, 32128));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "d_model", &c.d_model, 512));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "d_kv", &c.d_kv, 64));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "d_ff", &c.d_ff, 2048));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "num_heads", &c.num_heads, 8));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "num_layers", &c.num_layers, 6));
  // Attention projections are [3 * num_heads * d_kv, d_model]: checked before anything
  // multiplies them.
  if (c.num_heads * c.d_kv > kMaxSize) {
    return Invalid(file, absl::StrCat("num_heads ", c.num_heads, " x d_kv ", c.d_kv, " is ",
                                      c.num_heads * c.d_kv, ", more than ", kMaxSize));
  }
  MODELPOOL_RETURN_IF_ERROR(
      ReadPositive(file, "num_decoder_layers", &c.num_decoder_layers, c.num_layers));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "relative_attention_num_buckets",
                                         &c.relative_attention_num_buckets, 32, 2));
  MODELPOOL_RETURN_IF_ERROR(ReadPositive(file, "relative_attention_max_distance",
                                         &c.relative_attention_max_distance, 128, 2));
  MODELPOOL_ASSIGN_OR_RETURN(c.layer_norm_epsilon, file.Number("layer_norm_epsilon", 1e-6));
  if (!(c.layer_norm_epsilon > 0)) return Invalid(file, "layer_norm_epsilon must be > 0");
  MODELPOOL_ASSIGN_OR_RETURN(c.tie_word_embeddings, file.Bool("tie_word_embeddings", true));
  // Note [T5 output scaling]
  // transformers 4 scaled the decoder output exactly when the embeddings were tied, and
  // flan-t5's config says tie_word_embeddings=false with its own lm_head.weight. transformers
  // 5 writes scale_decoder_outputs for the scaling and may tie the head of a config made with
  // tie_word_embeddings=false (saving shared.weight alone). So: scale as scale_decoder_outputs
  // says when present, as tie_word_embeddings says otherwise; project with lm_head.weight when
  // the checkpoint has it, with the embedding otherwise (t5_model.cc).
  MODELPOOL_ASSIGN_OR_RETURN(c.scale_decoder_outputs,
                             file.Bool("scale_decoder_outputs", c.tie_word_embeddings));

  // As transformers' T5Config: "gated-gelu" is the tanh approximation (gelu_new), kept for
  // the checkpoints published before `dense_act_fn` existed.
  MODELPOOL_ASSIGN_OR_RETURN(const std::string proj, file.String("feed_forward_proj", "relu"));
  const size_t dash = proj.find('-');
  const std::string prefix = dash == std::string::npos ? "" : proj.substr(0, dash);
  const std::string act = dash == std::string::npos ? proj : proj.substr(dash + 1);
  if ((dash != std::string::npos && prefix != "gated") || act.empty() ||
      act.find('-') != std::string::npos) {
    return Invalid(file, absl::StrCat("feed_forward_proj \"", proj,
                                      "\" is not ACT or gated-ACT (relu, gated-gelu, ...)"));
  }
  c.gated = prefix == "gated";
  MODELPOOL_ASSIGN_OR_RETURN(
      c.activation,
      ParseActivation(file, "feed_forward_proj", proj == "gated-gelu" ? "gelu_new" : act));

  MODELPOOL_RETURN_IF_ERROR(ReadTokenIds(file, &c));
  return c;
}

}  // namespace

absl::StatusOr<T5Files> ReadT5Files(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile config_file,
                             JsonFile::Read((dir / "config.json").string()));
  T5Files files;
  MODELPOOL_ASSIGN_OR_RETURN(files.config, ParseConfig(config_file));
  T5Config& c = files.config;
  GenerationTokenIds ids{c.decoder_start_token_id, c.pad_token_id, c.eos_token_ids};
  MODELPOOL_ASSIGN_OR_RETURN(files.generation,
                             ReadGenerationDefaults(model_dir, config_file, &ids));
  MODELPOOL_RETURN_IF_ERROR(
      CheckGenerationTokenIds(model_dir, ids, files.generation, c.vocab_size));
  c.decoder_start_token_id = ids.decoder_start_token_id;
  c.pad_token_id = ids.pad_token_id;
  c.eos_token_ids = std::move(ids.eos_token_ids);
  return files;
}

}  // namespace modelpool
