#include "modelpool/text/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "lib/base/parallel_for.h"
#include "modelpool/text/sentencepiece_tokenizer.h"
#include "modelpool/text/wordpiece_tokenizer.h"

namespace modelpool {

int64_t EncodedBatch::num_tokens() const {
  int64_t n = 0;
  for (const auto& row : ids) n += static_cast<int64_t>(row.size());
  return n;
}

int64_t EncodedBatch::max_length() const {
  int64_t longest = 0;
  for (const auto& row : ids) longest = std::max<int64_t>(longest, row.size());
  return longest;
}

EncodedBatch Tokenizer::EncodeBatch(absl::Span<const std::string> texts,
                                    const EncodeOptions& options) const {
  EncodedBatch batch;
  batch.ids.resize(texts.size());
  std::vector<char> truncated(texts.size(), 0);
  // Texts of a few hundred bytes take microseconds: chunks of 16 amortize the hand-off.
  ParallelFor(static_cast<int64_t>(texts.size()), 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      bool cut = false;
      batch.ids[i] = Encode(texts[i], options, &cut);
      truncated[i] = cut;
    }
  });
  batch.num_truncated = std::count(truncated.begin(), truncated.end(), 1);
  return batch;
}

namespace {

bool IsFile(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir) {
  const std::filesystem::path path(model_dir);
  std::error_code error;
  std::filesystem::path dir = path;
  std::filesystem::path spiece = path / "spiece.model";
  std::filesystem::path tokenizer_json = path / "tokenizer.json";
  std::filesystem::path vocab_txt = path / "vocab.txt";
  if (IsFile(path)) {
    // One file, named by its kind.
    dir = path.parent_path();
    const std::string extension = path.extension().string();
    spiece = extension == ".model" ? path : std::filesystem::path();
    tokenizer_json = extension == ".json" ? path : std::filesystem::path();
    vocab_txt = extension == ".txt" ? path : std::filesystem::path();
    if (spiece.empty() && tokenizer_json.empty() && vocab_txt.empty()) {
      return absl::InvalidArgumentError(model_dir +
                                        ": not a tokenizer file (.model, .json or .txt)");
    }
  } else if (!std::filesystem::is_directory(path, error)) {
    return absl::NotFoundError(model_dir + " does not exist");
  }
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  const std::string config = IsFile(config_path) ? config_path.string() : "";
  absl::StatusOr<std::unique_ptr<Tokenizer>> result;
  if (!spiece.empty() && IsFile(spiece)) {
    auto loaded = SentencePieceTokenizer::FromFile(spiece.string(), config);
    if (!loaded.ok()) return loaded.status();
    return std::unique_ptr<Tokenizer>(std::move(*loaded));
  }
  if (!tokenizer_json.empty() && IsFile(tokenizer_json)) {
    auto loaded = WordPieceTokenizer::FromTokenizerJson(tokenizer_json.string(), config);
    if (!loaded.ok()) return loaded.status();
    return std::unique_ptr<Tokenizer>(std::move(*loaded));
  }
  if (!vocab_txt.empty() && IsFile(vocab_txt)) {
    auto loaded = WordPieceTokenizer::FromVocabTxt(vocab_txt.string(), config);
    if (!loaded.ok()) return loaded.status();
    return std::unique_ptr<Tokenizer>(std::move(*loaded));
  }
  return absl::NotFoundError(model_dir + " has no spiece.model, tokenizer.json or vocab.txt");
}

}  // namespace modelpool
