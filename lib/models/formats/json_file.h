#ifndef MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_
#define MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace modelpool {

// The most bytes a model's JSON file may have: configs and shard indexes are kilobytes; parsed
// JSON takes several times its text in memory.
inline constexpr int64_t kMaxJsonFileBytes = int64_t{16} << 20;
// The deepest nesting of arrays and objects accepted: model files nest a few levels, and
// nlohmann's printing and copying recurse once per level.
inline constexpr int kMaxJsonDepth = 100;

// ParseJson()
//
// Parses `text`; `source` names it in errors. `InvalidArgument` for text that is not JSON
// (with the byte where it stops being JSON) or nests deeper than `kMaxJsonDepth`.
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, const std::string& source);

// ReadJsonFile()
//
// Reads and parses the regular file at `path` (see `ReadRegularFile`): `NotFound` if nothing is
// there, `InvalidArgument` for a folder, a FIFO or a device, a file over `max_bytes`, or text
// that `ParseJson` refuses.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path,
                                            int64_t max_bytes = kMaxJsonFileBytes);

// A short description of `value` for an error message: scalars as JSON, cut after a few dozen
// characters; arrays and objects by their kind and size.
std::string DescribeJson(const nlohmann::json& value);

// JsonFile
//
// A JSON object read from a file, with typed lookups whose errors name the file and the key:
// "config.json: hidden_size is \"x\", expected an integer".
class JsonFile {
 public:
  // `NotFound` if the file is missing, `InvalidArgument` if it is not a JSON object or not a
  // readable regular file (see `ReadJsonFile`).
  static absl::StatusOr<JsonFile> Read(const std::string& path);
  // As `Read`, but a missing file gives an empty object. A link that leads nowhere is not
  // missing: it is `NotFound`, naming the link.
  static absl::StatusOr<JsonFile> ReadIfPresent(const std::string& path);
  // A JSON object from `text`; `path` names it in errors.
  static absl::StatusOr<JsonFile> Parse(std::string_view text, const std::string& path);

  bool Has(const std::string& key) const;
  // The value at `key`, or `fallback` when the key is absent or null; wrong types are errors,
  // and so are integers outside int64's range.
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
  static absl::StatusOr<JsonFile> FromJson(std::string path, nlohmann::json json);
  // The value at `key`, or null if absent; `NotFound` naming the key when absent and required.
  absl::StatusOr<const nlohmann::json*> Lookup(const std::string& key, bool required) const;
  absl::Status WrongType(const std::string& key, const char* expected) const;

  std::string path_;
  nlohmann::json json_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FORMATS_JSON_FILE_H_
