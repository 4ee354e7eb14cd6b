#include "modelpool/text/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "lib/base/parallel_for.h"
#include "lib/text/tokenizer_json_internal.h"
#include "modelpool/base/status.h"
#include "modelpool/text/bpe_tokenizer.h"
#include "modelpool/text/sentencepiece_tokenizer.h"
#include "modelpool/text/unigram_tokenizer.h"
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
  for (size_t i = 0; i < truncated.size(); ++i) {
    if (truncated[i]) batch.truncated_rows.push_back(static_cast<int64_t>(i));
  }
  batch.num_truncated = static_cast<int64_t>(batch.truncated_rows.size());
  return batch;
}

namespace {

bool IsFile(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

template <typename T>
absl::StatusOr<std::unique_ptr<Tokenizer>> Upcast(absl::StatusOr<std::unique_ptr<T>> loaded) {
  if (!loaded.ok()) return loaded.status();
  return std::unique_ptr<Tokenizer>(std::move(*loaded));
}

// The tokenizer that `tokenizer.json`'s `model.type` names.
absl::StatusOr<std::unique_ptr<Tokenizer>> FromTokenizerJson(const std::string& file,
                                                             const std::string& config) {
  MODELPOOL_ASSIGN_OR_RETURN(const text_internal::Json json, text_internal::ReadJsonObject(file));
  const text_internal::Json model = json.value("model", text_internal::Json());
  const std::string type = text_internal::TypeOf(model);
  if (type == "WordPiece") return Upcast(WordPieceTokenizer::FromTokenizerJson(file, config));
  if (type == "BPE") return Upcast(BpeTokenizer::FromTokenizerJson(file, config));
  if (type == "Unigram") return Upcast(UnigramTokenizer::FromTokenizerJson(file, config));
  return text_internal::InvalidFile(
      file, "model.type `" + type + "` is not supported (only WordPiece, BPE and Unigram)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir) {
  const std::filesystem::path path(model_dir);
  std::error_code error;
  std::filesystem::path dir = path;
  if (IsFile(path)) {
    dir = path.parent_path();
  } else if (!std::filesystem::is_directory(path, error)) {
    return absl::NotFoundError(model_dir + " does not exist");
  }
  const auto in_dir = [&](const char* name) {
    const std::filesystem::path file = dir / name;
    return IsFile(file) ? file.string() : std::string();
  };
  const std::string config = in_dir("tokenizer_config.json");
  const auto bpe_files = [&]() {
    return Upcast(BpeTokenizer::FromVocabAndMerges(in_dir("vocab.json"), in_dir("merges.txt"),
                                                   config, in_dir("special_tokens_map.json")));
  };
  if (IsFile(path)) {
    // One file, named by its kind.
    const std::string name = path.filename().string();
    const std::string extension = path.extension().string();
    if (name == "vocab.json" || name == "merges.txt") {
      if (in_dir("vocab.json").empty() || in_dir("merges.txt").empty()) {
        return absl::NotFoundError(model_dir + " needs vocab.json and merges.txt beside it");
      }
      return bpe_files();
    }
    if (extension == ".json") return FromTokenizerJson(path.string(), config);
    if (extension == ".model")
      return Upcast(SentencePieceTokenizer::FromFile(path.string(), config));
    if (extension == ".txt") return Upcast(WordPieceTokenizer::FromVocabTxt(path.string(), config));
    return absl::InvalidArgumentError(model_dir +
                                      ": not a tokenizer file (.json, .model, merges.txt or .txt)");
  }
  if (const std::string file = in_dir("tokenizer.json"); !file.empty()) {
    return FromTokenizerJson(file, config);
  }
  if (const std::string file = in_dir("spiece.model"); !file.empty()) {
    return Upcast(SentencePieceTokenizer::FromFile(file, config));
  }
  if (!in_dir("vocab.json").empty() && !in_dir("merges.txt").empty()) return bpe_files();
  if (const std::string file = in_dir("vocab.txt"); !file.empty()) {
    return Upcast(WordPieceTokenizer::FromVocabTxt(file, config));
  }
  return absl::NotFoundError(model_dir +
                             " has no tokenizer.json, spiece.model, vocab.json and merges.txt, "
                             "or vocab.txt");
}

}  // namespace modelpool
