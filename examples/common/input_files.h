#ifndef MODELPOOL_EXAMPLES_COMMON_INPUT_FILES_H_
#define MODELPOOL_EXAMPLES_COMMON_INPUT_FILES_H_

// The input files of modelpool's programs: texts one a line, JSON arrays of texts, JSON arrays
// of token id lists. Every reader refuses what it cannot take whole and exactly, naming the
// file and, inside it, the line or element.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace modelpool::cli {

// The most bytes an input file may have.
inline constexpr int64_t kMaxInputBytes = int64_t{1} << 30;

// The lines of `text`, each one text: blank lines are texts too (output line i answers input
// line i), a last line needs no newline, and "\r\n" endings count as "\n".
std::vector<std::string> SplitLines(std::string_view text);

// A JSON array of strings; `source` names the text in errors.
absl::StatusOr<std::vector<std::string>> ParseTexts(std::string_view json,
                                                    const std::string& source);

// A JSON array of arrays of token ids, each an integer from 0 to 2^31 - 1 written as one:
// 125.7, 125.0, true and 4294967421 are errors naming the element ("[2][7]"), not 125 or 1.
absl::StatusOr<std::vector<std::vector<int32_t>>> ParseTokenIds(std::string_view json,
                                                                const std::string& source);

// As `ParseTokenIds`, from JSON already parsed.
absl::StatusOr<std::vector<std::vector<int32_t>>> TokenIdsFromJson(const nlohmann::json& json,
                                                                   const std::string& source);

// The same, read from the regular file at `path` (a folder, a FIFO, a device or a file over
// `kMaxInputBytes` is `InvalidArgument`; a missing file `NotFound`).
absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path);
absl::StatusOr<std::vector<std::string>> ReadTexts(const std::string& path);
absl::StatusOr<std::vector<std::vector<int32_t>>> ReadTokenIds(const std::string& path);

}  // namespace modelpool::cli

#endif  // MODELPOOL_EXAMPLES_COMMON_INPUT_FILES_H_
