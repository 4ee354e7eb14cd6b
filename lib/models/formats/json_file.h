#ifndef MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_
#define MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace modelpool {

// JsonFile
//
// A JSON object read from a file, with typed lookups whose errors name the file and the key:
// "config.json: hidden_size is \"x\", expected an integer".
class JsonFile {
 public:
  // `NotFound` if the file is missing, `InvalidArgument` if it is not a JSON object.
  static absl::StatusOr<JsonFile> Read(const std::string& path);
  // As `Read`, but a missing file gives an empty object.
  static absl::StatusOr<JsonFile> ReadIfPresent(const std::string& path);

  bool Has(const std::string& key) const;
  // The value at `key`, or `fallback` when the key is absent or null; wrong types are errors.
  absl::StatusOr<int64_t> Int(const std::string& key, std::optional<int64_t> fallback = {}) const;
  // As `Int`, but a value below 1 is `InvalidArgument` naming the file and the key.
  absl::StatusOr<int64_t> PositiveInt(const std::string& key,
                                      std::optional<int64_t> fallback = {}) const;
  absl::StatusOr<double> Number(const std::string& key, std::optional<double> fallback = {}) const;
  absl::StatusOr<bool> Bool(const std::string& key, std::optional<bool> fallback = {}) const;
  absl::StatusOr<std::string> String(const std::string& key,
                                     std::optional<std::string> fallback = {}) const;

  const nlohmann::json& json() const { return json_; }
  const std::string& path() const { return path_; }

 private:
  JsonFile(std::string path, nlohmann::json json)
      : path_(std::move(path)), json_(std::move(json)) {}
  // The value at `key`, or null if absent; `NotFound` naming the key when absent and required.
  absl::StatusOr<const nlohmann::json*> Lookup(const std::string& key, bool required) const;
  absl::Status WrongType(const std::string& key, const char* expected) const;

  std::string path_;
  nlohmann::json json_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_
