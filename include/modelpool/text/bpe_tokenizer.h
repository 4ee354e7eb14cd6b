#ifndef MODELPOOL_TEXT_BPE_TOKENIZER_H_
#define MODELPOOL_TEXT_BPE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// BpeTokenizer
//
// The byte-level BPE tokenizer of GPT-2, RoBERTa and BART, giving the ids the Hugging Face
// `tokenizers` library gives: added tokens found in the raw text (`<s>`, `<mask>`, with their
// `lstrip`/`rstrip`/`single_word`), the normalizer if any, the `ByteLevel` pre-tokenizer (a
// leading space with `add_prefix_space`, GPT-2's split into words, each byte as a printable
// character), the BPE merges by rank, and the special tokens of the post-processor (`<s> ...
// </s>` for RoBERTa). Truncation keeps the special tokens and cuts the text's ids.
//
// Immutable after loading; every method is thread-safe.
class BpeTokenizer : public Tokenizer {
 public:
  // BpeTokenizer::FromTokenizerJson()
  //
  // Loads a `tokenizer.json` with a `BPE` model (`dropout` off, no subword prefix or suffix),
  // a `ByteLevel` pre-tokenizer, a normalizer as `UnigramTokenizer` reads them (or none), and
  // a `TemplateProcessing`, `RobertaProcessing` or `ByteLevel` post-processor (or none). The
  // `model_max_length` and `pad_token` of `tokenizer_config_json` (a path; may be empty) are
  // kept. `NotFound` for a missing file; `InvalidArgument` naming the file and the field for
  // anything malformed or not implemented (a merge of tokens not in the vocabulary, ...).
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(
      const std::string& tokenizer_json, const std::string& tokenizer_config_json = "");

  // BpeTokenizer::FromVocabAndMerges()
  //
  // Loads `vocab.json` and `merges.txt` as transformers' `RobertaTokenizer`, `BartTokenizer`
  // and `GPT2Tokenizer` build them: `add_prefix_space` from the config (default false), and
  // when the vocabulary has `<s>` and `</s>` (and the config's `tokenizer_class` is not a
  // GPT-2 one), RoBERTa's special tokens `<s> <pad> </s> <unk> <mask>` (`<mask>` taking the
  // spaces before it) and `<s> ... </s>` around the text; otherwise GPT-2's `<|endoftext|>`
  // and nothing around the text. The config's and `special_tokens_map.json`'s token names
  // (`bos_token`, `eos_token`, ...) and `added_tokens_decoder` apply; `special_tokens_map`
  // is a path and may be empty.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromVocabAndMerges(
      const std::string& vocab_json, const std::string& merges_txt,
      const std::string& tokenizer_config_json = "", const std::string& special_tokens_map = "");

  ~BpeTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options,
                              bool* truncated = nullptr) const override;
  // The tokens' bytes joined, as the `ByteLevel` decoder does, and read as UTF-8 (an invalid
  // sequence becomes U+FFFD). Unknown ids are skipped; with `skip_special_tokens`, so are the
  // special added tokens.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = true) const override;
  int32_t vocab_size() const override;
  int32_t pad_id() const override;
  int32_t model_max_length() const override;

  // The id of `token` (an added token or a byte-level vocabulary entry), or -1.
  int32_t TokenToId(std::string_view token) const;

 private:
  struct Impl;
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_BPE_TOKENIZER_H_
