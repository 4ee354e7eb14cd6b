#include "lib/models/generation/generation_defaults.h"

#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

absl::Status Invalid(const JsonFile& file, const std::string& key, const nlohmann::json& value,
                     const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(file.path(), ": ", key, " is ", value.dump(), ", expected ", expected));
}

// An integer or a non-empty list of them.
absl::StatusOr<std::vector<int64_t>> ReadIdList(const JsonFile& file, const std::string& key) {
  const nlohmann::json& value = file.json().at(key);
  std::vector<int64_t> ids;
  if (value.is_number_integer()) {
    ids.push_back(value.get<int64_t>());
  } else if (value.is_array()) {
    for (const nlohmann::json& id : value) {
      if (!id.is_number_integer()) return Invalid(file, key, value, "an integer or a list of them");
      ids.push_back(id.get<int64_t>());
    }
  }
  if (ids.empty()) return Invalid(file, key, value, "an integer or a list of them");
  return ids;
}

// Note [Generation defaults from the folder]
// transformers takes a model's generation settings from generation_config.json and, for a
// folder without one, from the generation keys of config.json (where folders written before
// generation_config.json existed keep them: bart-large-cnn's num_beams 4, length_penalty 2.0,
// min_length 56, max_length 142, no_repeat_ngram_size 3, early_stopping true, forced
// BOS/EOS). A generation_config.json that says "_from_model_config": true was made from
// config.json, and transformers 4 went back to config.json's keys when they differed from it;
// so for such a file, a key it lacks is taken from config.json. task_specific_params are the
// pipelines' business, not generate()'s: only the summarization prefix is read from them.
class Sources {
 public:
  Sources(const JsonFile& config, const JsonFile& generation, bool has_generation)
      : config_(config), generation_(generation), has_generation_(has_generation) {
    const auto from_model = generation.json().find("_from_model_config");
    from_model_config_ = from_model != generation.json().end() && from_model->is_boolean() &&
                         from_model->get<bool>();
  }

  // The file whose value of `key` counts; null when neither has it.
  const JsonFile* For(const std::string& key) const {
    if (has_generation_ && generation_.Has(key)) return &generation_;
    if ((!has_generation_ || from_model_config_) && config_.Has(key)) return &config_;
    return nullptr;
  }

 private:
  const JsonFile& config_;
  const JsonFile& generation_;
  const bool has_generation_;
  bool from_model_config_ = false;
};

absl::Status ReadCount(const Sources& sources, const std::string& key, int64_t min,
                       std::optional<int64_t>* out) {
  const JsonFile* file = sources.For(key);
  if (file == nullptr) return absl::OkStatus();
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t value, file->Int(key));
  if (value < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(file->path(), ": ", key, " is ", value, ", expected >= ", min));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ReadEarlyStopping(const Sources& sources, std::optional<EarlyStopping>* out) {
  const JsonFile* file = sources.For("early_stopping");
  if (file == nullptr) return absl::OkStatus();
  const nlohmann::json& value = file->json().at("early_stopping");
  if (value.is_boolean()) {
    *out = value.get<bool>() ? EarlyStopping::kWhenBeamsDone : EarlyStopping::kHeuristic;
  } else if (value.is_string() && value.get<std::string>() == "never") {
    *out = EarlyStopping::kNever;
  } else {
    return Invalid(*file, "early_stopping", value, "true, false or \"never\"");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ReadPrefix(const JsonFile& config) {
  const auto params = config.json().find("task_specific_params");
  if (params == config.json().end() || !params->is_object()) return std::nullopt;
  const auto summarization = params->find("summarization");
  if (summarization == params->end() || !summarization->is_object()) return std::nullopt;
  const auto prefix = summarization->find("prefix");
  if (prefix == summarization->end() || prefix->is_null()) return std::nullopt;
  if (!prefix->is_string()) {
    return Invalid(config, "task_specific_params.summarization.prefix", *prefix, "a string");
  }
  return prefix->get<std::string>();
}

}  // namespace

absl::Status ReadGenerationTokenIds(const JsonFile& file, GenerationTokenIds* ids) {
  MODELPOOL_ASSIGN_OR_RETURN(ids->decoder_start_token_id,
                             file.Int("decoder_start_token_id", ids->decoder_start_token_id));
  MODELPOOL_ASSIGN_OR_RETURN(ids->pad_token_id, file.Int("pad_token_id", ids->pad_token_id));
  if (file.Has("eos_token_id")) {
    MODELPOOL_ASSIGN_OR_RETURN(ids->eos_token_ids, ReadIdList(file, "eos_token_id"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationDefaults> ReadGenerationDefaults(const std::string& model_dir,
                                                          const JsonFile& config,
                                                          GenerationTokenIds* ids) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "generation_config.json";
  std::error_code ec;
  const bool has_generation = std::filesystem::exists(path, ec);
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile generation, JsonFile::ReadIfPresent(path.string()));
  MODELPOOL_RETURN_IF_ERROR(ReadGenerationTokenIds(generation, ids));

  const Sources sources(config, generation, has_generation);
  GenerationDefaults g;
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "max_new_tokens", 1, &g.max_new_tokens));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "max_length", 1, &g.max_length));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "min_new_tokens", 0, &g.min_new_tokens));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "min_length", 0, &g.min_length));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "num_beams", 1, &g.num_beams));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "no_repeat_ngram_size", 0, &g.no_repeat_ngram_size));
  MODELPOOL_RETURN_IF_ERROR(ReadCount(sources, "forced_bos_token_id", 0, &g.forced_bos_token_id));
  if (const JsonFile* file = sources.For("length_penalty")) {
    MODELPOOL_ASSIGN_OR_RETURN(g.length_penalty, file->Number("length_penalty"));
    if (!std::isfinite(*g.length_penalty)) {
      return Invalid(*file, "length_penalty", file->json().at("length_penalty"), "a finite number");
    }
  }
  MODELPOOL_RETURN_IF_ERROR(ReadEarlyStopping(sources, &g.early_stopping));
  if (const JsonFile* file = sources.For("forced_eos_token_id")) {
    MODELPOOL_ASSIGN_OR_RETURN(g.forced_eos_token_ids, ReadIdList(*file, "forced_eos_token_id"));
  }
  MODELPOOL_ASSIGN_OR_RETURN(g.prefix, ReadPrefix(config));
  return g;
}

absl::Status CheckGenerationTokenIds(const std::string& where, const GenerationTokenIds& ids,
                                     const GenerationDefaults& defaults, int64_t vocab_size) {
  auto in_vocab = [&](const char* key, int64_t id) -> absl::Status {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", key, " ", id, " is outside the vocabulary of ", vocab_size));
    }
    return absl::OkStatus();
  };
  MODELPOOL_RETURN_IF_ERROR(in_vocab("decoder_start_token_id", ids.decoder_start_token_id));
  MODELPOOL_RETURN_IF_ERROR(in_vocab("pad_token_id", ids.pad_token_id));
  if (ids.eos_token_ids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no eos_token_id"));
  }
  for (int64_t id : ids.eos_token_ids) MODELPOOL_RETURN_IF_ERROR(in_vocab("eos_token_id", id));
  if (defaults.forced_bos_token_id) {
    MODELPOOL_RETURN_IF_ERROR(in_vocab("forced_bos_token_id", *defaults.forced_bos_token_id));
  }
  for (int64_t id : defaults.forced_eos_token_ids) {
    MODELPOOL_RETURN_IF_ERROR(in_vocab("forced_eos_token_id", id));
  }
  return absl::OkStatus();
}

}  // namespace modelpool
