#ifndef MODELPOOL_LIB_MODELS_GENERATION_GENERATION_DEFAULTS_H_
#define MODELPOOL_LIB_MODELS_GENERATION_GENERATION_DEFAULTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/models/formats/json_file.h"
#include "modelpool/models/summarization_model.h"

namespace modelpool {

// The token ids generation starts, pads and stops with. An architecture reads them from
// config.json (with its own defaults); generation_config.json may override them.
struct GenerationTokenIds {
  int64_t decoder_start_token_id = 0;
  int64_t pad_token_id = 0;
  std::vector<int64_t> eos_token_ids;
};

// GenerationDefaults
//
// A model folder's generation settings, as Note [Generation defaults from the folder] says
// where they come from. Unset fields take the call's options, else transformers' defaults.
struct GenerationDefaults {
  std::optional<int64_t> max_new_tokens;
  std::optional<int64_t> max_length;  // counts the decoder start token, as transformers does
  std::optional<int64_t> min_new_tokens;
  std::optional<int64_t> min_length;  // likewise
  std::optional<int64_t> num_beams;
  std::optional<double> length_penalty;
  std::optional<EarlyStopping> early_stopping;
  std::optional<int64_t> no_repeat_ngram_size;
  // The first generated token is this one (bart-large-cnn: <s>).
  std::optional<int64_t> forced_bos_token_id;
  // The last token a text can have (at the length limit) is one of these; empty: none.
  std::vector<int64_t> forced_eos_token_ids;
  // What Summarize() puts before every text: config.json's
  // task_specific_params.summarization.prefix ("summarize: " in T5 folders).
  std::optional<std::string> prefix;
};

// ReadGenerationDefaults()
//
// The generation settings of the folder `model_dir`, whose config.json is `config`, and the
// token ids of generation_config.json over `ids` (which the architecture read from `config`).
// `InvalidArgument` naming the file and the key for a mistyped value or one out of range
// (num_beams below 1, a negative length or n-gram size, a length penalty that is not finite).
absl::StatusOr<GenerationDefaults> ReadGenerationDefaults(const std::string& model_dir,
                                                          const JsonFile& config,
                                                          GenerationTokenIds* ids);

// Reads `decoder_start_token_id`, `pad_token_id` and `eos_token_id` (an integer or a list of
// them) where `file` has them. `InvalidArgument` naming the file and the key otherwise.
absl::Status ReadGenerationTokenIds(const JsonFile& file, GenerationTokenIds* ids);

// `InvalidArgument` naming `where` and the key when a token id of `ids` or `defaults` is
// outside a vocabulary of `vocab_size`.
absl::Status CheckGenerationTokenIds(const std::string& where, const GenerationTokenIds& ids,
                                     const GenerationDefaults& defaults, int64_t vocab_size);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_GENERATION_DEFAULTS_H_
