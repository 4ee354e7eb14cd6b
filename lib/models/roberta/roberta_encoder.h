#ifndef MODELPOOL_LIB_MODELS_ROBERTA_ROBERTA_ENCODER_H_
#define MODELPOOL_LIB_MODELS_ROBERTA_ROBERTA_ENCODER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "lib/models/encoder.h"
#include "lib/models/formats/json_file.h"

namespace modelpool {

// ReadRobertaArchitecture()
//
// The encoder of a `model_type` "roberta" or "xlm-roberta" config.json (Hugging Face's
// RobertaModel and XLMRobertaModel without the pooler): BERT's layers, with position ids that
// count a row's non-padding tokens from `pad_token_id + 1` (Note [RoBERTa positions]) and the
// weights stored bare or under "roberta.". Errors as `ReadBertConfig()`'s, and
// `InvalidArgument` naming the file when `max_position_embeddings` leaves no position for a
// token past the offset.
absl::StatusOr<std::unique_ptr<EncoderArchitecture>> ReadRobertaArchitecture(
    const JsonFile& config);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_ROBERTA_ROBERTA_ENCODER_H_
