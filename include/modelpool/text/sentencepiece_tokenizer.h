#ifndef MODELPOOL_TEXT_SENTENCEPIECE_TOKENIZER_H_
#define MODELPOOL_TEXT_SENTENCEPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

// SentencePieceTokenizer
//
// T5's tokenizer: a SentencePiece unigram model (`spiece.model`), read and run natively with
// the ids the `sentencepiece` library gives. The text is normalized with the model's
// precompiled character map (user-defined symbols are kept as they are), whitespace becomes
// U+2581 with a leading one added and runs collapsed as the model says, and the Viterbi path of
// highest score is taken; a character no piece covers is the unk id, and a run of them is one
// unk id. With `add_special_tokens`, `</s>` closes the ids; truncation keeps it.
//
// Models of another type (BPE, word, char), with `byte_fallback`, with whitespace as suffix,
// or with denormalization rules are refused.
//
// Immutable after loading; every method is thread-safe.
class SentencePieceTokenizer : public Tokenizer {
 public:
  // SentencePieceTokenizer::FromFile()
  //
  // Loads a serialized `ModelProto` (`spiece.model`), with the `extra_ids` and
  // `model_max_length` of `tokenizer_config_json` when that path is not empty. The extra ids
  // are T5's sentinel tokens after the vocabulary: the first one after it is
  // `<extra_id_{extra_ids-1}>`, the last `<extra_id_0>`. `NotFound` for a missing file,
  // `InvalidArgument` for a malformed or unsupported model (the message names the file and the
  // cause).
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> FromFile(
      const std::string& spiece_model, const std::string& tokenizer_config_json = "");
  // As `FromFile()`, from the model's bytes; `name` names it in errors.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> FromBytes(
      std::string_view bytes, const std::string& name, int32_t extra_ids = 0,
      int32_t model_max_length = 0);

  ~SentencePieceTokenizer() override;

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options,
                              bool* truncated = nullptr) const override;
  // Text as `sentencepiece` decodes it: U+2581 becomes a space, the leading one is dropped,
  // control ids give nothing and the unk id " \u2047 ". With `skip_special_tokens`, control,
  // unk and extra ids are left out; without, an extra id gives `<extra_id_N>`. Ids beyond the
  // extra ids are skipped.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = true) const override;
  // The pieces of the model plus the extra ids.
  int32_t vocab_size() const override;
  int32_t pad_id() const override;
  int32_t model_max_length() const override;

  // The id closing every text (`</s>`), or -1 if the model has none.
  int32_t eos_id() const;
  int32_t unk_id() const;
  // The piece of `id` ("▁Hello", "<extra_id_0>"), or "" when out of range.
  std::string IdToPiece(int32_t id) const;

 private:
  struct Impl;
  explicit SentencePieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_SENTENCEPIECE_TOKENIZER_H_
