#ifndef MODELPOOL_MODELS_SUMMARIZATION_MODEL_H_
#define MODELPOOL_MODELS_SUMMARIZATION_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/base/device.h"

namespace modelpool {

// When beam search stops, as transformers' `early_stopping` says.
enum class EarlyStopping {
  // `False`: stop a text when no running beam can, by a length-penalty heuristic, beat its
  // worst finished one. transformers' default.
  kHeuristic,
  // `True`: stop a text as soon as it has `num_beams` finished hypotheses.
  kWhenBeamsDone,
  // `"never"`: the canonical beam search; with `length_penalty > 0`, running beams are judged
  // at the longest length they could reach.
  kNever,
};

// GenerationOptions
//
// How to generate. Every unset field takes the model folder's value (its
// `generation_config.json`, else the generation keys of its `config.json`, as transformers
// reads them), and transformers' default where the folder is silent.
struct GenerationOptions {
  // The most tokens to generate per text, the end-of-sequence token included (default 20,
  // as transformers). At most the instance's limit.
  std::optional<int> max_new_tokens;
  // End-of-sequence is forbidden before this many tokens (default 0).
  std::optional<int> min_new_tokens;
  // 1 is greedy search (the default); more is beam search with that many beams.
  std::optional<int> num_beams;
  // Finished beams are scored sum(log p) / length^length_penalty (default 1.0), length being
  // the generated tokens counting the end-of-sequence token.
  std::optional<double> length_penalty;
  std::optional<EarlyStopping> early_stopping;  // default kHeuristic
  // No n-gram of this size appears twice in a generated text, the decoder start token counting
  // as the first token (default 0: off).
  std::optional<int> no_repeat_ngram_size;

  // `Summarize()` only: prepended to every text. Unset: the folder's summarization prefix
  // (config.json's task_specific_params), else "summarize: " for T5 and none for BART.
  std::optional<std::string> prefix;
  // `Summarize()` only: texts are cut to this many tokens, the closing </s> kept; 0 means the
  // instance's limit.
  int max_input_tokens = 0;
};

// SummarizationModel
//
// One loaded encoder-decoder model (T5, BART) on one device, with its tokenizer. Instances
// come from `SummarizationModelManager` leases. Not thread-safe: an instance holds the caches
// of the batch it is working on, so one thread at a time uses it (which a lease ensures).
class SummarizationModel {
 public:
  virtual ~SummarizationModel() = default;

  // SummarizationModel::Summarize()
  //
  // Summaries of `texts`, in input order: each text is prefixed with `options.prefix`,
  // tokenized (cut at `max_input_tokens` keeping its closing special token), generated in batches
  // of up to the instance's batch limit, and decoded without special tokens. `InvalidArgument` for
  // options out of range or over the instance's limits; `ResourceExhausted` when the device runs
  // out of memory.
  virtual absl::StatusOr<std::vector<std::string>> Summarize(
      absl::Span<const std::string> texts, const GenerationOptions& options = {}) = 0;

  // SummarizationModel::Generate()
  //
  // The ids generated for each row of `input_ids` (encoder input ids as the tokenizer gives
  // them, special tokens included),
  // in input order, without the decoder start token: a row ends with the end-of-sequence id,
  // or has `max_new_tokens` ids when none came. Rows are batched in the order given (up to the
  // instance's limit per batch), right-padded with the pad id. `InvalidArgument` for an empty
  // row, a row longer than the instance's input limit, an id outside the vocabulary, or
  // options out of range.
  virtual absl::StatusOr<std::vector<std::vector<int32_t>>> Generate(
      absl::Span<const std::vector<int32_t>> input_ids, const GenerationOptions& options = {}) = 0;

  // Where the instance runs.
  virtual Device device() const = 0;
};

}  // namespace modelpool

#endif  // MODELPOOL_MODELS_SUMMARIZATION_MODEL_H_
