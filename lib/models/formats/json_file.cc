#include "json_file.h"

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/status.h"

namespace modelpool {

absl::StatusOr<JsonFile> JsonFile::Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(path, " is not valid JSON"));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a JSON object"));
  }
  return JsonFile(path, std::move(json));
}

absl::StatusOr<JsonFile> JsonFile::ReadIfPresent(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return JsonFile(path, nlohmann::json::object());
  return Read(path);
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
      absl::StrCat(path_, ": ", key, " is ", json_.at(key).dump(), ", expected ", expected));
}

absl::StatusOr<int64_t> JsonFile::Int(const std::string& key,
                                      std::optional<int64_t> fallback) const {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json* value, Lookup(key, !fallback.has_value()));
  if (value == nullptr) return *fallback;
  if (!value->is_number_integer()) return WrongType(key, "an integer");
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
