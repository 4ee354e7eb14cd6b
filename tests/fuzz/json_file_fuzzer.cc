// Arbitrary bytes as a model's JSON file: refused with a status naming the file, or an object
// whose typed lookups each give a value or a short error naming the file and the key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/models/formats/json_file.h"
#include "tests/fuzz/fuzz_options.h"

namespace {

constexpr char kPath[] = "/models/m/config.json";

void CheckError(const absl::Status& status, const std::string& key) {
  if (status.ok()) return;
  const std::string_view message(status.message().data(), status.message().size());
  modelpool::fuzz::Check(message.rfind(kPath, 0) == 0, "the error names the file");
  modelpool::fuzz::Check(message.find(key) != std::string_view::npos, "the error names the key");
  // A key can be long; the value's description must not be.
  modelpool::fuzz::Check(message.size() <= sizeof(kPath) + 2 * key.size() + 160, "brief");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<modelpool::JsonFile> file = modelpool::JsonFile::Parse(text, kPath);
  if (!file.ok()) {
    modelpool::fuzz::Check(file.status().code() == absl::StatusCode::kInvalidArgument,
                           "InvalidArgument");
    modelpool::fuzz::Check(file.status().message().find(kPath) == 0, "the error names the file");
    return 0;
  }
  for (const auto& [key, value] : file->json().items()) {
    modelpool::fuzz::Check(modelpool::DescribeJson(value).size() <= 64, "DescribeJson is brief");
    CheckError(file->Int(key).status(), key);
    CheckError(file->Number(key).status(), key);
    CheckError(file->Bool(key).status(), key);
    CheckError(file->String(key).status(), key);
    if (absl::StatusOr<int64_t> n = file->Int(key); n.ok()) {
      modelpool::fuzz::Check(value.is_number_integer(), "Int only from integers");
    }
  }
  return 0;
}
