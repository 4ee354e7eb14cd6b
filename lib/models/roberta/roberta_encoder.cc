#include "lib/models/roberta/roberta_encoder.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/bert/bert_config.h"
#include "lib/models/bert/bert_encoder.h"
#include "modelpool/base/status.h"

namespace modelpool {

// Note [RoBERTa positions]
// fairseq, and transformers after it, give RoBERTa's tokens the position ids
// padding_idx + 1, padding_idx + 2, ... counting only the tokens that are not padding, and
// give padding the id padding_idx itself (whose embedding is never trained). The table has
// max_position_embeddings rows, so a row holds at most max_position_embeddings - padding_idx
// - 1 tokens: 512 for the usual 514. Rows here are unpadded, so the count is the token's index
// but for a padding id inside a text (a literal "<pad>"), which BertEncoder takes care of.
absl::StatusOr<std::unique_ptr<EncoderArchitecture>> ReadRobertaArchitecture(
    const JsonFile& config) {
  MODELPOOL_ASSIGN_OR_RETURN(BertConfig bert, ReadBertConfig(config));
  // RobertaConfig's default, where BertConfig's is 0.
  if (!config.Has("pad_token_id")) bert.pad_token_id = 1;
  if (bert.pad_token_id >= bert.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.path(), ": pad_token_id ", bert.pad_token_id,
                     " is outside the vocabulary of ", bert.vocab_size));
  }
  bert.position_offset = bert.pad_token_id + 1;
  bert.positions_skip_padding = true;
  if (bert.max_positions() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.path(), ": max_position_embeddings ", bert.max_position_embeddings,
                     " leaves no position past pad_token_id ", bert.pad_token_id,
                     " (positions start at pad_token_id + 1)"));
  }
  return std::make_unique<BertArchitecture>(std::move(bert),
                                            std::vector<std::string>{"", "roberta."});
}

}  // namespace modelpool
