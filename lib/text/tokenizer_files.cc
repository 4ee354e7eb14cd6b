#include <limits>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "lib/base/file.h"
#include "lib/text/tokenizer_files_internal.h"

namespace modelpool::text_internal {

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  return ReadRegularFile(path, kMaxTokenizerFileBytes);
}

absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path) {
  TokenizerConfig config;
  if (path.empty()) return config;
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  const nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(path + ": not a JSON object");
  }
  const auto flag = [&](const char* key, std::optional<bool>* out) -> absl::Status {
    if (!json.contains(key) || json[key].is_null()) return absl::OkStatus();
    if (!json[key].is_boolean()) {
      return absl::InvalidArgumentError(path + ": `" + key + "` is not true or false");
    }
    *out = json[key].get<bool>();
    return absl::OkStatus();
  };
  if (absl::Status s = flag("do_lower_case", &config.do_lower_case); !s.ok()) return s;
  if (absl::Status s = flag("tokenize_chinese_chars", &config.tokenize_chinese_chars); !s.ok()) {
    return s;
  }
  if (json.contains("strip_accents")) {
    std::optional<bool> strip;
    if (absl::Status s = flag("strip_accents", &strip); !s.ok()) return s;
    config.strip_accents = strip;
  }
  if (json.contains("pad_token")) {
    const nlohmann::json& pad = json["pad_token"];
    if (pad.is_string()) config.pad_token = pad.get<std::string>();
    if (pad.is_object() && pad.contains("content") && pad["content"].is_string()) {
      config.pad_token = pad["content"].get<std::string>();
    }
  }
  if (json.contains("model_max_length") && json["model_max_length"].is_number()) {
    const double max_length = json["model_max_length"].get<double>();
    if (max_length > 0 && max_length <= std::numeric_limits<int32_t>::max()) {
      config.model_max_length = static_cast<int32_t>(max_length);
    }
  }
  if (json.contains("extra_ids") && json["extra_ids"].is_number_integer()) {
    const int64_t extra_ids = json["extra_ids"].get<int64_t>();
    if (extra_ids < 0 || extra_ids > 100000) {
      return absl::InvalidArgumentError(path + ": `extra_ids` out of range");
    }
    config.extra_ids = static_cast<int32_t>(extra_ids);
  }
  return config;
}

}  // namespace modelpool::text_internal
