#ifndef MODELPOOL_TEXT_UNIGRAM_TOKENIZER_H_
#define MODELPOOL_TEXT_UNIGRAM_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// UnigramTokenizer
//
// A `Unigram` model read from a Hugging Face `tokenizer.json` (XLM-RoBERTa's and T5's fast
// tokenizers), giving the ids the `tokenizers` library gives: added tokens found in the raw
// text, the normalizer (`Precompiled`, sentencepiece's character map as that library applies
// it, `NFKC`, `Replace`, ...), the `Metaspace` pre-tokenizer (spaces become U+2581, one is
// prepended, and each U+2581 starts a word; `WhitespaceSplit` before it as T5 has), the
// Viterbi segmentation of highest score over the pieces (a run of unknown characters is one
// unk id, or its bytes with `byte_fallback`), and the post-processor's special tokens
// (`<s> ... </s>` for XLM-R, `... </s>` for T5). Truncation keeps the special tokens.
//
// The segmentation is the one `SentencePieceTokenizer` runs, in double as the library sums;
// where the two libraries normalize or split whitespace alike, the ids equal those of
// `spiece.model`.
//
// Immutable after loading; every method is thread-safe.
class UnigramTokenizer : public Tokenizer {
 public:
  // UnigramTokenizer::FromTokenizerJson()
  //
  // `tokenizer_config_json` (a path; may be empty) gives `model_max_length` and `pad_token`.
  // `NotFound` for a missing file; `InvalidArgument` naming the file and the field for anything
  // malformed or not implemented.
  static absl::StatusOr<std::unique_ptr<UnigramTokenizer>> FromTokenizerJson(
      const std::string& tokenizer_json, const std::string& tokenizer_config_json = "");

  ~UnigramTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options,
                              bool* truncated = nullptr) const override;
  // As the `Metaspace` decoder: U+2581 becomes a space, except in the first token, where it is
  // dropped. Unknown ids are skipped; with `skip_special_tokens`, so are special added tokens.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = true) const override;
  int32_t vocab_size() const override;
  int32_t pad_id() const override;
  int32_t model_max_length() const override;

  // The id of `token` (an added token or a piece), or -1.
  int32_t TokenToId(std::string_view token) const;

 private:
  struct Impl;
  explicit UnigramTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_UNIGRAM_TOKENIZER_H_
