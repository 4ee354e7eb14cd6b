#include "lib/models/bart/bart_config.h"

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

// The largest size a config may give: far above any real model, and small enough that the
// products of a few of them do not overflow int64.
constexpr int64_t kMaxSize = int64_t{1} << 24;

absl::Status ReadSize(const JsonFile& file, const std::string& key, int64_t* out) {
  MODELPOOL_ASSIGN_OR_RETURN(*out, file.Int(key, *out));
  if (*out < 1 || *out > kMaxSize) {
    return Invalid(file, absl::StrCat(key, " is ", *out, ", expected 1 to ", kMaxSize));
  }
  return absl::OkStatus();
}

absl::StatusOr<BartActivation> ReadActivation(const JsonFile& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string name, file.String("activation_function", "gelu"));
  if (name == "gelu") return BartActivation::kGelu;
  if (name == "gelu_new" || name == "gelu_fast" || name == "gelu_pytorch_tanh") {
    return BartActivation::kGeluTanh;
  }
  if (name == "relu") return BartActivation::kRelu;
  if (name == "silu" || name == "swish") return BartActivation::kSilu;
  return Invalid(file, absl::StrCat("activation_function \"", name,
                                    "\" is not supported (gelu, gelu_new, relu, silu)"));
}

// Keys of old or mBART-style configs that would change the layout; each must keep BART's value.
absl::Status CheckLayout(const JsonFile& file) {
  struct Key {
    const char* name;
    bool bart_value;
  };
  for (const Key& key : {Key{"normalize_before", false}, Key{"add_final_layer_norm", false},
                         Key{"static_position_embeddings", false}, Key{"add_bias_logits", false},
                         Key{"normalize_embedding", true}}) {
    MODELPOOL_ASSIGN_OR_RETURN(const bool value, file.Bool(key.name, key.bart_value));
    if (value != key.bart_value) {
      return Invalid(file, absl::StrCat(key.name, " is ", value ? "true" : "false",
                                        ": only BART's layout is supported (", key.name, " ",
                                        key.bart_value ? "true" : "false", ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BartConfig> ParseConfig(const JsonFile& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string model_type, file.String("model_type"));
  if (model_type != "bart") {
    return Invalid(file, absl::StrCat("model_type \"", model_type, "\" is not BART (bart)"));
  }
  MODELPOOL_RETURN_IF_ERROR(CheckLayout(file));
  BartConfig c;
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "vocab_size", &c.vocab_size));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "d_model", &c.d_model));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "encoder_layers", &c.encoder_layers));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "decoder_layers", &c.decoder_layers));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "encoder_attention_heads", &c.encoder_attention_heads));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "decoder_attention_heads", &c.decoder_attention_heads));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "encoder_ffn_dim", &c.encoder_ffn_dim));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "decoder_ffn_dim", &c.decoder_ffn_dim));
  MODELPOOL_RETURN_IF_ERROR(ReadSize(file, "max_position_embeddings", &c.max_position_embeddings));
  for (const auto& [key, heads] :
       {std::pair<const char*, int64_t>{"encoder_attention_heads", c.encoder_attention_heads},
        {"decoder_attention_heads", c.decoder_attention_heads}}) {
    if (c.d_model % heads != 0) {
      return Invalid(
          file, absl::StrCat("d_model ", c.d_model, " is not a multiple of ", key, " ", heads));
    }
  }
  MODELPOOL_ASSIGN_OR_RETURN(c.activation, ReadActivation(file));
  MODELPOOL_ASSIGN_OR_RETURN(c.scale_embedding, file.Bool("scale_embedding", false));
  MODELPOOL_ASSIGN_OR_RETURN(c.tie_word_embeddings, file.Bool("tie_word_embeddings", true));
  MODELPOOL_RETURN_IF_ERROR(ReadGenerationTokenIds(file, &c.ids));
  return c;
}

}  // namespace

absl::StatusOr<BartFiles> ReadBartFiles(const std::string& model_dir) {
  MODELPOOL_ASSIGN_OR_RETURN(
      const JsonFile config_file,
      JsonFile::Read((std::filesystem::path(model_dir) / "config.json").string()));
  BartFiles files;
  MODELPOOL_ASSIGN_OR_RETURN(files.config, ParseConfig(config_file));
  BartConfig& c = files.config;
  MODELPOOL_ASSIGN_OR_RETURN(files.generation,
                             ReadGenerationDefaults(model_dir, config_file, &c.ids));
  MODELPOOL_RETURN_IF_ERROR(
      CheckGenerationTokenIds(model_dir, c.ids, files.generation, c.vocab_size));
  return files;
}

}  // namespace modelpool
