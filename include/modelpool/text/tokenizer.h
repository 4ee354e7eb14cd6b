#ifndef MODELPOOL_TEXT_TOKENIZER_H_
#define MODELPOOL_TEXT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace modelpool {

struct EncodeOptions {
  // The most ids per text, special tokens included; 0 means no limit.
  int max_length = 512;
  // Cut texts longer than `max_length` (the default); if false, they are returned whole.
  bool truncation = true;
  // [CLS] ... [SEP] for WordPiece, a closing </s> for SentencePiece, the tokenizer.json
  // post-processor's (<s> ... </s> for RoBERTa) for the others.
  bool add_special_tokens = true;
};

// The ids of a batch of texts, one unpadded row per text, in input order.
struct EncodedBatch {
  std::vector<std::vector<int32_t>> ids;
  // How many texts were cut at `max_length`, and which (their indices, in order).
  int64_t num_truncated = 0;
  std::vector<int64_t> truncated_rows;

  int64_t num_tokens() const;
  int64_t max_length() const;
};

// Tokenizer
//
// Turns text into model ids and back. Implementations are immutable after loading, so every
// method is thread-safe.
//
// Input is UTF-8. Invalid UTF-8 is not an error: each maximal invalid byte sequence is read
// as U+FFFD, as Python's `bytes.decode("utf-8", errors="replace")` does, so every input gives
// the ids the reference tokenizer gives for that decoded string.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The ids of one text; sets `*truncated` (when not null) if it was cut at `max_length`.
  virtual std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options,
                                      bool* truncated = nullptr) const = 0;

  // Tokenizer::EncodeBatch()
  //
  // `Encode()` for every text; large batches are split over all cores.
  EncodedBatch EncodeBatch(absl::Span<const std::string> texts, const EncodeOptions& options) const;

  // Text from ids; with `skip_special_tokens`, padding, separators and the like are left out.
  virtual std::string Decode(absl::Span<const int32_t> ids,
                             bool skip_special_tokens = true) const = 0;

  // The number of ids the vocabulary defines.
  virtual int32_t vocab_size() const = 0;
  // The id that pads a batch.
  virtual int32_t pad_id() const = 0;
  // The longest input the model was trained with, from `tokenizer_config.json`; 0 if unknown.
  virtual int32_t model_max_length() const = 0;
};

// LoadTokenizer()
//
// The tokenizer of a Hugging Face model folder, each with the folder's `tokenizer_config.json`
// when present: `tokenizer.json` when present, as its `model.type` says (`WordPiece`: a
// `WordPieceTokenizer`, `BPE`: a `BpeTokenizer`, `Unigram`: a `UnigramTokenizer`); else
// `spiece.model` (`SentencePieceTokenizer`); else `vocab.json` with `merges.txt` (a
// `BpeTokenizer`, with `special_tokens_map.json` too); else `vocab.txt` (WordPiece).
// `model_dir` may also name one such file. `NotFound` when there is none of them,
// `InvalidArgument` when a file is malformed (the message names the file and the field) or
// describes a tokenizer this SDK does not implement.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir);

}  // namespace modelpool

#endif  // MODELPOOL_TEXT_TOKENIZER_H_
