#ifndef MODELPOOL_LIB_MODELS_GENERATION_GENERATION_H_
#define MODELPOOL_LIB_MODELS_GENERATION_GENERATION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "ATen/Tensor.h"
#include "c10/core/Device.h"
#include "modelpool/models/summarization_model.h"

namespace modelpool {

// StepDecoder
//
// A decoder that has seen its encoder input and caches what it computed for earlier
// positions. Rows are laid out batch-major: row b * num_beams + k is beam k of text b.
class StepDecoder {
 public:
  virtual ~StepDecoder() = default;

  // Next-token logits, float32 [rows, vocab], given each row's token at `position` (int64
  // [rows]; position 0 holds the decoder start token). Positions come in order 0, 1, 2...
  virtual at::Tensor Step(const at::Tensor& tokens, int64_t position) = 0;

  // Row i continues from row `parents[i]` (int64 [rows], on the device): the cached
  // positions [0, length) are reordered to match.
  virtual void Reorder(const at::Tensor& parents, int64_t length) = 0;

  // Static steps (Note [Decoder steps in a CUDA graph]): whether `StepAt` serves positions
  // [0, positions) of the batch being decoded.
  virtual bool CanStepAt(int64_t positions) const { return false; }
  // `Step` at the position held in `position` (int64 [1], on the device), with no shape, host
  // value or allocation that depends on it, so that one capture replays for every position.
  // Only where `CanStepAt`.
  virtual at::Tensor StepAt(const at::Tensor& tokens, const at::Tensor& position);
};

// Generation settings with every default resolved and validated.
struct SearchOptions {
  int64_t max_new_tokens = 20;
  int64_t min_new_tokens = 0;
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  int64_t no_repeat_ngram_size = 0;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = 0;
  int64_t decoder_start_token_id = 0;
  // The first generated token is forced to this one, as transformers'
  // ForcedBOSTokenLogitsProcessor does.
  std::optional<int64_t> forced_bos_token_id;
  // At the last step (max_new_tokens), only these may come, as transformers'
  // ForcedEOSTokenLogitsProcessor does; empty: no constraint.
  std::vector<int64_t> forced_eos_token_ids;
  // How many steps pass between checks (a device-to-host copy) of whether every text is done.
  // Running on past the point transformers stops does not change the result.
  int64_t steps_per_done_check = 4;
  // Greedy steps' bookkeeping on two kernels of our own where they run
  // (GreedyStepOnDevice); false: the tensor operations, which tests compare them with.
  bool greedy_on_device = true;
};

// GenerateIds()
//
// Greedy search (`num_beams` == 1) or beam search for `batch` texts on `decoder`, whose rows
// must number batch * num_beams. Follows transformers' `generate` (5.x: `_sample` without
// sampling, and the vectorized `_beam_search`), step for step, on the device: see
// Note [Beam search as transformers does it] in generation.cc. Returns each text's generated
// ids without the decoder start token, cut after the end-of-sequence id. Throws what libtorch
// throws.
std::vector<std::vector<int32_t>> GenerateIds(StepDecoder& decoder, int64_t batch,
                                              const SearchOptions& options, c10::Device device);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_GENERATION_H_
