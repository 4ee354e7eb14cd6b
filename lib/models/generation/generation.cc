#include "lib/models/generation/generation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "ATen/ATen.h"
#include "lib/models/generation/greedy_step_on_device.h"

namespace modelpool {
namespace {

// transformers' "very large negative" score for beams that must not be chosen.
constexpr double kExcluded = -1.0e9;

at::TensorOptions LongOn(c10::Device device) {
  return at::TensorOptions().dtype(at::kLong).device(device);
}

// Sets to -inf the score of every token that would complete an n-gram already present in
// `sequences` (int64 [rows, length], the decoder start token included), as transformers'
// NoRepeatNGramLogitsProcessor does, for all rows at once on the device.
void BanRepeatedNgrams(at::Tensor& scores, const at::Tensor& sequences, int64_t n) {
  const int64_t rows = sequences.size(0);
  const int64_t length = sequences.size(1);
  const int64_t vocab = scores.size(1);
  if (length < n) return;                                                // no complete n-gram yet
  const at::Tensor windows = sequences.unfold(1, n, 1);                  // [rows, W, n]
  const at::Tensor last = sequences.narrow(1, length - (n - 1), n - 1);  // [rows, n - 1]
  const at::Tensor match = windows.narrow(2, 0, n - 1).eq(last.unsqueeze(1)).all(-1);
  // Matching windows name the token they continue with; the others point at a spare column.
  const at::Tensor banned =
      at::where(match, windows.select(2, n - 1), at::scalar_tensor(vocab, sequences.options()));
  at::Tensor mask = at::zeros({rows, vocab + 1}, scores.options().dtype(at::kBool));
  mask.scatter_(1, banned, true);
  scores.masked_fill_(mask.narrow(1, 0, vocab), -std::numeric_limits<double>::infinity());
}

// Leaves only `ids` possible: every other score becomes -inf and theirs 0.
void Force(at::Tensor& scores, const at::Tensor& ids) {
  scores.fill_(-std::numeric_limits<double>::infinity()).index_fill_(1, ids, 0.0);
}

// The ids forced at step `length` (as ProcessScores counts it), or an undefined tensor: the
// last step's where the first step is also the last, as transformers' processors leave it.
at::Tensor ForcedAt(int64_t length, const SearchOptions& o, const at::Tensor& forced_bos,
                    const at::Tensor& forced_eos) {
  if (forced_eos.defined() && length == o.max_new_tokens) return forced_eos;
  if (forced_bos.defined() && length == 1) return forced_bos;
  return at::Tensor();
}

// The logits processors transformers builds for these options, in its order: no-repeat
// n-grams, the minimum length (both min_length and min_new_tokens reduce to this for an
// encoder-decoder model whose decoder prompt is the start token alone), the forced first
// token, the forced last one. `length` counts the decoder start token, as transformers'
// `cur_len` does: the first step sees 1, the last max_new_tokens (its max_length - 1).
void ProcessScores(at::Tensor& scores, const at::Tensor& sequences, const SearchOptions& o,
                   const at::Tensor& eos, const at::Tensor& forced_bos,
                   const at::Tensor& forced_eos) {
  const int64_t length = sequences.size(1);
  if (o.no_repeat_ngram_size > 0) BanRepeatedNgrams(scores, sequences, o.no_repeat_ngram_size);
  if (length - 1 < o.min_new_tokens) {
    scores.index_fill_(1, eos, -std::numeric_limits<double>::infinity());
  }
  if (const at::Tensor forced = ForcedAt(length, o, forced_bos, forced_eos); forced.defined()) {
    Force(scores, forced);
  }
}

// The forced tokens of `o` on `device`: undefined tensors where none are.
std::pair<at::Tensor, at::Tensor> ForcedTokens(const SearchOptions& o, c10::Device device) {
  std::pair<at::Tensor, at::Tensor> forced;
  if (o.forced_bos_token_id) {
    forced.first = at::full({1}, *o.forced_bos_token_id, LongOn(device));
  }
  if (!o.forced_eos_token_ids.empty()) {
    forced.second = at::tensor(o.forced_eos_token_ids, LongOn(at::kCPU)).to(device);
  }
  return forced;
}

std::vector<std::vector<int32_t>> CutRows(const at::Tensor& sequences, const at::Tensor& lengths) {
  const at::Tensor ids = sequences.to(at::kCPU).contiguous();
  const at::Tensor lens = lengths.to(at::kCPU).contiguous();
  const int64_t width = ids.size(1);
  std::vector<std::vector<int32_t>> rows(ids.size(0));
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t* row = ids.data_ptr<int64_t>() + i * width;
    const int64_t n = lens.data_ptr<int64_t>()[i];
    rows[i].assign(row + 1, row + 1 + n);  // position 0 is the decoder start token
  }
  return rows;
}

std::vector<std::vector<int32_t>> Greedy(StepDecoder& decoder, int64_t batch,
                                         const SearchOptions& o, c10::Device device) {
  const int64_t max_new = o.max_new_tokens;
  const at::Tensor eos = at::tensor(o.eos_token_ids, LongOn(at::kCPU)).to(device);
  const auto [forced_bos, forced_eos] = ForcedTokens(o, device);
  GreedyState state;
  state.sequences = at::full({batch, max_new + 1}, o.pad_token_id, LongOn(device));
  state.sequences.select(1, 0).fill_(o.decoder_start_token_id);
  state.unfinished = at::ones({batch}, LongOn(device).dtype(at::kBool));
  state.lengths = at::zeros({batch}, LongOn(device));
  const at::Tensor pad = at::scalar_tensor(o.pad_token_id, LongOn(device));
  for (int64_t len = 1; len <= max_new; ++len) {
    at::Tensor scores = decoder.Step(state.sequences.select(1, len - 1), len - 1);
    const at::Tensor forced = ForcedAt(len, o, forced_bos, forced_eos);
    if (!o.greedy_on_device || !GreedyStepOnDevice(scores, state, len, eos, forced, o)) {
      ProcessScores(scores, state.sequences.narrow(1, 0, len), o, eos, forced_bos, forced_eos);
      // Finished texts continue with padding, as transformers' `_sample` does.
      const at::Tensor next = at::where(state.unfinished, scores.argmax(-1), pad);
      state.sequences.select(1, len).copy_(next);
      state.lengths.add_(state.unfinished);
      state.unfinished.logical_and_(at::isin(next, eos).logical_not());
    }
    if (len % o.steps_per_done_check == 0 && !state.unfinished.any().item<bool>()) break;
  }
  return CutRows(state.sequences, state.lengths);
}

// Note [Beam search as transformers does it]
//
// transformers 5 (`GenerationMixin._beam_search` and its helpers `_get_top_k_continuations`,
// `_get_running_beams_for_next_iteration`, `_update_finished_beams`,
// `_check_early_stop_heuristic`) keeps, per text, `num_beams` running beams and `num_beams`
// finished hypotheses, and at every step:
//  1. log_softmax of the float32 logits, then the logits processors, plus each beam's
//     running score;
//  2. the top K = max(2, 1 + #eos) * num_beams of the num_beams * vocab candidates (topk over
//     the flattened [beam, token] axis, so beam = index / vocab, token = index % vocab);
//  3. a candidate hits a stop when its token is an end-of-sequence id, or when the sequence
//     reaches max_length (all candidates at the last step);
//  4. the next running beams are the top num_beams candidates after adding -1e9 to those
//     that hit a stop;
//  5. among the first num_beams candidates (and only those), the ones that hit a stop are
//     scored sum_logprob / generated_length^length_penalty (generated_length counts the new
//     token, not the decoder start token), get -1e9 when their text is already done
//     (early_stopping=True with all slots finished, or the heuristic below said no), and are
//     merged with the finished hypotheses by a topk over both;
//  6. the heuristic: the best running beam's score divided by
//     (max_length - 1 if early_stopping == "never" and length_penalty > 0, else the current
//     generated length)^length_penalty must beat the worst finished score (-1e9 while a slot
//     is empty), or the text is done for good.
// Every score operation below is the same tensor operation in the same order (float32,
// Python scalars as double), so ids match transformers' on the same device.
std::vector<std::vector<int32_t>> Beam(StepDecoder& decoder, int64_t batch, const SearchOptions& o,
                                       c10::Device device) {
  const int64_t beams = o.num_beams;
  const int64_t max_new = o.max_new_tokens;
  const int64_t width = max_new + 1;
  const int64_t keep =
      std::max<int64_t>(2, 1 + static_cast<int64_t>(o.eos_token_ids.size())) * beams;
  const at::TensorOptions longs = LongOn(device);
  const at::TensorOptions floats = longs.dtype(at::kFloat);
  const at::TensorOptions bools = longs.dtype(at::kBool);
  const at::Tensor eos = at::tensor(o.eos_token_ids, LongOn(at::kCPU)).to(device);
  const auto [forced_bos, forced_eos] = ForcedTokens(o, device);
  const bool stop_when_full = o.early_stopping == EarlyStopping::kWhenBeamsDone;

  at::Tensor running = at::full({batch, beams, width}, o.pad_token_id, longs);
  running.select(2, 0).fill_(o.decoder_start_token_id);
  // Only the first beam is live at first, so the first step does not pick one token K times.
  at::Tensor running_scores = at::zeros({batch, beams}, floats);
  running_scores.narrow(1, 1, beams - 1).fill_(kExcluded);
  at::Tensor finished = running.clone();
  at::Tensor finished_scores = at::full({batch, beams}, kExcluded, floats);
  at::Tensor finished_lengths = at::zeros({batch, beams}, longs);
  at::Tensor is_finished = at::zeros({batch, beams}, bools);
  at::Tensor improvable = at::ones({batch, 1}, bools);
  const at::Tensor first_beams =
      at::cat({at::ones({beams}, bools), at::zeros({keep - beams}, bools)});
  const at::Tensor row_offsets = at::arange(batch, longs).mul_(beams).unsqueeze(1);

  for (int64_t len = 1; len <= max_new; ++len) {
    const at::Tensor flat = running.view({batch * beams, width});
    at::Tensor log_probs = at::log_softmax(decoder.Step(flat.select(1, len - 1), len - 1), -1);
    ProcessScores(log_probs, flat.narrow(1, 0, len), o, eos, forced_bos, forced_eos);
    const int64_t vocab = log_probs.size(1);
    log_probs = (log_probs.view({batch, beams, vocab}) + running_scores.unsqueeze(2))
                    .reshape({batch, beams * vocab});

    // Top continuations over every beam.
    at::Tensor top_scores, top_indices;
    std::tie(top_scores, top_indices) = at::topk(log_probs, keep);
    const at::Tensor top_beams = top_indices.div(vocab, "floor");
    const at::Tensor top_tokens = top_indices.remainder(vocab);
    at::Tensor top_sequences =
        running.gather(1, top_beams.unsqueeze(2).expand({batch, keep, width}));
    top_sequences.select(2, len).copy_(top_tokens);
    at::Tensor hits = at::isin(top_tokens, eos);
    if (len == max_new) hits.fill_(true);

    // The running beams of the next step.
    const at::Tensor running_candidates = top_scores + hits.to(at::kFloat) * kExcluded;
    const at::Tensor next = std::get<1>(at::topk(running_candidates, beams));
    running = top_sequences.gather(1, next.unsqueeze(2).expand({batch, beams, width}));
    running_scores = running_candidates.gather(1, next);
    const at::Tensor parents = (top_beams + row_offsets).gather(1, next).view({batch * beams});

    // The finished hypotheses.
    const at::Tensor just_finished = hits.logical_and(first_beams);
    at::Tensor candidate_scores = top_scores / std::pow(static_cast<double>(len), o.length_penalty);
    if (stop_when_full) {
      candidate_scores = candidate_scores + is_finished.all(-1, true).to(at::kFloat) * kExcluded;
    }
    candidate_scores = candidate_scores + improvable.logical_not().to(at::kFloat) * kExcluded;
    candidate_scores = candidate_scores + just_finished.logical_not().to(at::kFloat) * kExcluded;
    const at::Tensor merged_scores = at::cat({finished_scores, candidate_scores}, 1);
    const at::Tensor best = std::get<1>(at::topk(merged_scores, beams));
    finished = at::cat({finished, top_sequences}, 1)
                   .gather(1, best.unsqueeze(2).expand({batch, beams, width}));
    finished_scores = merged_scores.gather(1, best);
    finished_lengths =
        at::cat({finished_lengths, at::full({batch, keep}, len, longs)}, 1).gather(1, best);
    is_finished = at::cat({is_finished, just_finished}, 1).gather(1, best);
    if (len == max_new) break;

    decoder.Reorder(parents, len);

    // Can the running beams still beat the worst finished hypothesis?
    const int64_t best_length =
        o.early_stopping == EarlyStopping::kNever && o.length_penalty > 0.0 ? max_new : len;
    const at::Tensor best_possible = running_scores.narrow(1, 0, 1) /
                                     std::pow(static_cast<double>(best_length), o.length_penalty);
    const at::Tensor worst_finished =
        at::where(is_finished, std::get<0>(finished_scores.min(1, true)),
                  at::scalar_tensor(kExcluded, floats));
    improvable = improvable.logical_and(best_possible.gt(worst_finished).any(-1, true));
    if (len % o.steps_per_done_check == 0) {
      const bool open =
          improvable.any().item<bool>() && !(stop_when_full && is_finished.all().item<bool>());
      if (!open) break;
    }
  }
  return CutRows(finished.select(1, 0), finished_lengths.select(1, 0));
}

}  // namespace

at::Tensor StepDecoder::StepAt(const at::Tensor& tokens, const at::Tensor& position) {
  TORCH_CHECK(false, "this decoder has no static steps");
}

std::vector<std::vector<int32_t>> GenerateIds(StepDecoder& decoder, int64_t batch,
                                              const SearchOptions& options, c10::Device device) {
  if (batch == 0 || options.max_new_tokens == 0) {
    return std::vector<std::vector<int32_t>>(batch);
  }
  return options.num_beams == 1 ? Greedy(decoder, batch, options, device)
                                : Beam(decoder, batch, options, device);
}

}  // namespace modelpool
