#include "examples/common/input_files.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/base/file.h"
#include "lib/models/formats/json_file.h"
#include "modelpool/base/status.h"
#include "nlohmann/json.hpp"

namespace modelpool::cli {
namespace {

absl::Status CheckArray(const nlohmann::json& json, const std::string& source, const char* of) {
  if (json.is_array()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(source, " is ", DescribeJson(json), ", expected a JSON array of ", of));
}

}  // namespace

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

absl::StatusOr<std::vector<std::string>> ParseTexts(std::string_view json,
                                                    const std::string& source) {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json array, ParseJson(json, source));
  MODELPOOL_RETURN_IF_ERROR(CheckArray(array, source, "strings"));
  std::vector<std::string> texts;
  texts.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": element [", i, "] is ", DescribeJson(array[i]), ", expected a string"));
    }
    texts.push_back(array[i].get<std::string>());
  }
  return texts;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> ParseTokenIds(std::string_view json,
                                                                const std::string& source) {
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json parsed, ParseJson(json, source));
  return TokenIdsFromJson(parsed, source);
}

absl::StatusOr<std::vector<std::vector<int32_t>>> TokenIdsFromJson(const nlohmann::json& array,
                                                                   const std::string& source) {
  MODELPOOL_RETURN_IF_ERROR(CheckArray(array, source, "arrays of token ids"));
  constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    const nlohmann::json& row = array[i];
    if (!row.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": element [", i, "] is ",
                                                     DescribeJson(row),
                                                     ", expected an array of token ids"));
    }
    std::vector<int32_t>& ids = rows.emplace_back();
    ids.reserve(row.size());
    for (size_t j = 0; j < row.size(); ++j) {
      const nlohmann::json& id = row[j];
      // is_number_integer: not 125.7 or 125.0 (floats), not true (a boolean).
      const bool in_range =
          id.is_number_integer() &&
          (id.is_number_unsigned() ? id.get<uint64_t>() <= static_cast<uint64_t>(kMaxId)
                                   : id.get<int64_t>() >= 0 && id.get<int64_t>() <= kMaxId);
      if (!in_range) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": element [", i, "][", j, "] is ", DescribeJson(id),
                         ", expected a token id (an integer from 0 to ", kMaxId, ")"));
      }
      ids.push_back(id.get<int32_t>());
    }
  }
  return rows;
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadRegularFile(path, kMaxInputBytes));
  return SplitLines(text);
}

absl::StatusOr<std::vector<std::string>> ReadTexts(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadRegularFile(path, kMaxInputBytes));
  return ParseTexts(text, path);
}

absl::StatusOr<std::vector<std::vector<int32_t>>> ReadTokenIds(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadRegularFile(path, kMaxInputBytes));
  return ParseTokenIds(text, path);
}

}  // namespace modelpool::cli
