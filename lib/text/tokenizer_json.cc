#include "absl/status/status.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/tokenizer_json_internal.h"
#include "modelpool/base/status.h"

namespace modelpool::text_internal {

absl::Status InvalidFile(const std::string& file, const std::string& what) {
  return absl::InvalidArgumentError(file + ": " + what);
}

std::string TypeOf(const Json& section) {
  if (section.is_null()) return "";
  if (section.is_object() && section.contains("type") && section["type"].is_string()) {
    return section["type"].get<std::string>();
  }
  return "?";
}

absl::StatusOr<Json> ReadJsonObject(const std::string& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(file));
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return InvalidFile(file, "not a JSON object");
  return json;
}

std::string StringOr(const Json& object, const char* key, const std::string& fallback) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return fallback;
  return object[key].get<std::string>();
}

absl::Status ParseAddedTokens(const std::string& file, const Json& section,
                              std::vector<AddedToken>* added) {
  if (section.is_null()) return absl::OkStatus();
  if (!section.is_array()) return InvalidFile(file, "added_tokens is not a list");
  for (const Json& entry : section) {
    AddedToken token;
    const int64_t id = entry.at("id").get<int64_t>();
    token.content = entry.at("content").get<std::string>();
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    token.normalized = entry.value("normalized", true);
    token.special = entry.value("special", false);
    token.single_word = entry.value("single_word", false);
    if (id < 0 || id >= (1 << 24)) {
      return InvalidFile(file, "added token " + token.content + " has id " + std::to_string(id));
    }
    token.id = static_cast<int32_t>(id);
    added->push_back(std::move(token));
  }
  return absl::OkStatus();
}

namespace {

absl::Status ParseTemplate(const std::string& file, const Json& section,
                           std::vector<int32_t>* before, std::vector<int32_t>* after) {
  const Json& special_tokens = section.at("special_tokens");
  bool seen_sequence = false;
  for (const Json& piece : section.at("single")) {
    if (piece.contains("Sequence")) {
      if (seen_sequence) return InvalidFile(file, "post_processor template repeats the sequence");
      seen_sequence = true;
      continue;
    }
    const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
    if (!special_tokens.contains(name)) {
      return InvalidFile(file, "post_processor names an undefined special token " + name);
    }
    for (const Json& id : special_tokens[name].at("ids")) {
      (seen_sequence ? after : before)->push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) return InvalidFile(file, "post_processor template has no sequence");
  return absl::OkStatus();
}

}  // namespace

absl::Status ParsePostProcessor(const std::string& file, const Json& section,
                                std::vector<int32_t>* before, std::vector<int32_t>* after) {
  const std::string type = TypeOf(section);
  if (type.empty() || type == "ByteLevel") return absl::OkStatus();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    before->push_back(section.at("cls").at(1).get<int32_t>());
    after->push_back(section.at("sep").at(1).get<int32_t>());
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") return ParseTemplate(file, section, before, after);
  if (type == "Sequence") {
    for (const Json& processor : section.at("processors")) {
      MODELPOOL_RETURN_IF_ERROR(ParsePostProcessor(file, processor, before, after));
    }
    return absl::OkStatus();
  }
  return InvalidFile(file, "post_processor `" + type +
                               "` is not supported (only TemplateProcessing, BertProcessing, "
                               "RobertaProcessing, ByteLevel and Sequence)");
}

}  // namespace modelpool::text_internal
