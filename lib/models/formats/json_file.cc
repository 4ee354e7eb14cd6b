#include "lib/models/formats/json_file.h"

#include <sys/stat.h>

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/base/file.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

// Whether arrays and objects in `text` nest deeper than `limit`. Brackets inside strings do not
// count; the text need not be valid JSON.
bool NestsDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, const std::string& source) {
  if (NestsDeeperThan(text, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " nests arrays and objects deeper than ", kMaxJsonDepth, " levels"));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " is not valid JSON (at byte ", e.byte, ")"));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is not valid JSON: ", e.what()));
  }
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, int64_t max_bytes) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadRegularFile(path, max_bytes));
  return ParseJson(text, path);
}

std::string DescribeJson(const nlohmann::json& value) {
  if (value.is_array()) return absl::StrCat("an array of ", value.size());
  if (value.is_object()) return absl::StrCat("an object of ", value.size(), " keys");
  constexpr size_t kMaxChars = 40;
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxChars) text = absl::StrCat(text.substr(0, kMaxChars), "...");
  return text;
}

absl::StatusOr<JsonFile> JsonFile::FromJson(std::string path, nlohmann::json json) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", DescribeJson(json), ", not a JSON object"));
  }
  return JsonFile(std::move(path), std::move(json));
}

absl::StatusOr<JsonFile> JsonFile::Read(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  return FromJson(path, std::move(json));
}

absl::StatusOr<JsonFile> JsonFile::ReadIfPresent(const std::string& path) {
  struct stat st {};
  // lstat: a link is present even when what it points to is not.
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return JsonFile(path, nlohmann::json::object());
  }
  return Read(path);
}

absl::StatusOr<JsonFile> JsonFile::Parse(std::string_view text, const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(nlohmann::json json, ParseJson(text, path));
  return FromJson(path, std::move(json));
}

bool JsonFile::Has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

absl::StatusOr<const nlohmann::json*> JsonFile::Lookup(const std::string& key,
                                                       bool required) const {
  auto it = json_.find(key);
  if (it == json_.end() || it->is_null()) {
    if (required) return absl::NotFoundError(absl::StrCat(path_, ": no ", key));
    return nullptr;
  }
  return &*it;
}

absl::Status JsonFile::WrongType(const std::string& key, const char* expected) const {
  return absl::InvalidArgumentError(
      absl::StrCat(path_, ": ", key, " is ", DescribeJson(json_.at(key)), ", expected ", expected));
}

absl::StatusOr<int64_t> JsonFile::Int(const std::string& key,
                                      std::optional<int64_t> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json* value, Lookup(key, !fallback.has_value()));
  if (value == nullptr) return *fallback;
  if (!value->is_number_integer()) return WrongType(key, "an integer");
  // nlohmann keeps integers above int64's range as unsigned; get<int64_t> would wrap them.
  if (value->is_number_unsigned() &&
      value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return WrongType(key, "an integer in int64's range");
  }
  return value->get<int64_t>();
}

absl::StatusOr<int64_t> JsonFile::PositiveInt(const std::string& key,
                                              std::optional<int64_t> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t value, Int(key, fallback));
  if (value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", key, " is ", value, ", expected a positive integer"));
  }
  return value;
}

absl::StatusOr<double> JsonFile::Number(const std::string& key,
                                        std::optional<double> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json* value, Lookup(key, !fallback.has_value()));
  if (value == nullptr) return *fallback;
  if (!value->is_number()) return WrongType(key, "a number");
  return value->get<double>();
}

absl::StatusOr<bool> JsonFile::Bool(const std::string& key, std::optional<bool> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json* value, Lookup(key, !fallback.has_value()));
  if (value == nullptr) return *fallback;
  if (!value->is_boolean()) return WrongType(key, "true or false");
  return value->get<bool>();
}

absl::StatusOr<std::string> JsonFile::String(const std::string& key,
                                             std::optional<std::string> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json* value, Lookup(key, !fallback.has_value()));
  if (value == nullptr) return *fallback;
  if (!value->is_string()) return WrongType(key, "a string");
  return value->get<std::string>();
}

}  // namespace modelpool
