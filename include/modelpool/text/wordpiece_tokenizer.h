#ifndef MODELPOOL_TEXT_WORDPIECE_TOKENIZER_H_
#define MODELPOOL_TEXT_WORDPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// WordPieceTokenizer
//
// BERT's tokenizer, giving the ids the Hugging Face `tokenizers` library gives: special tokens
// found in the raw text (`[SEP]`, ...), then `BertNormalizer` (clean_text, handle_chinese_chars,
// strip_accents, lowercase), `BertPreTokenizer` (split on whitespace and punctuation), the
// `WordPiece` model (greedy longest match, `##` continuations, an over-long or unmatched word
// is one unk token), and `[CLS] ... [SEP]`. Truncation keeps the special tokens and cuts the
// text's ids, as `truncation=True` does.
//
// Immutable after loading; every method is thread-safe.
class WordPieceTokenizer : public Tokenizer {
 public:
  // WordPieceTokenizer::FromTokenizerJson()
  //
  // Loads a Hugging Face `tokenizer.json` with a `WordPiece` model, a `BertNormalizer` (or
  // none), a `BertPreTokenizer` and a `TemplateProcessing` or `BertProcessing` post-processor
  // (or none). `tokenizer_config_json`, when not empty, is the path of a `tokenizer_config.json`
  // whose `do_lower_case`, `strip_accents` and `tokenize_chinese_chars` override the normalizer,
  // as `BertTokenizerFast` does, and whose `model_max_length` is kept. The file's `truncation`
  // and `padding` sections are ignored: `EncodeOptions` decide. `NotFound` for a missing file;
  // `InvalidArgument` for anything else this class does not implement (another model,
  // normalizer or pre-tokenizer, ...), naming the file and the part.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromTokenizerJson(
      const std::string& tokenizer_json, const std::string& tokenizer_config_json = "");

  // WordPieceTokenizer::FromVocabTxt()
  //
  // Loads a BERT `vocab.txt` (one token per line, the line number is its id) with the defaults
  // of `BertTokenizerFast`: lowercase and strip accents, `[UNK]`, `[CLS] ... [SEP]`, and the
  // tokens `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` recognized in the text. A
  // `tokenizer_config.json` (optional) applies as for `FromTokenizerJson()`.
  static absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> FromVocabTxt(
      const std::string& vocab_txt, const std::string& tokenizer_config_json = "");

  ~WordPieceTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options,
                              bool* truncated = nullptr) const override;
  // Joins the tokens as the `WordPiece` decoder does: `##` pieces glued to the one before,
  // others after a space, then its cleanup (" ." becomes ".", ...). Unknown ids are skipped;
  // with `skip_special_tokens`, so are the special tokens ([CLS], [PAD], [UNK], ...).
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = true) const override;
  int32_t vocab_size() const override;
  int32_t pad_id() const override;
  int32_t model_max_length() const override;

  // The id of `token` in the vocabulary, or -1.
  int32_t TokenToId(std::string_view token) const;

 private:
  struct Impl;
  explicit WordPieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_WORDPIECE_TOKENIZER_H_
