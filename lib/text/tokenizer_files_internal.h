#ifndef MODELPOOL_LIB_TEXT_TOKENIZER_FILES_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_TOKENIZER_FILES_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace modelpool::text_internal {

// The most bytes a tokenizer file may have: the largest published tokenizer.json files are
// tens of megabytes.
inline constexpr int64_t kMaxTokenizerFileBytes = int64_t{512} << 20;

// The whole regular file (see `ReadRegularFile`): `NotFound` when it does not exist,
// `InvalidArgument` for a folder, a FIFO, a device or a file over `kMaxTokenizerFileBytes`.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// What `tokenizer_config.json` says that our tokenizers use.
struct TokenizerConfig {
  std::optional<bool> do_lower_case;
  // Present when the file has `strip_accents`; its value is empty for null ("as lowercase").
  std::optional<std::optional<bool>> strip_accents;
  std::optional<bool> tokenize_chinese_chars;
  std::optional<std::string> pad_token;
  // 0 when absent or the "no limit" sentinel (1e30).
  int32_t model_max_length = 0;
  // T5's sentinel tokens <extra_id_0> ... after the SentencePiece vocabulary.
  int32_t extra_ids = 0;
};

// Reads `path`; an empty path gives the defaults.
absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_TOKENIZER_FILES_INTERNAL_H_
