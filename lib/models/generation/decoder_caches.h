#ifndef MODELPOOL_LIB_MODELS_GENERATION_DECODER_CACHES_H_
#define MODELPOOL_LIB_MODELS_GENERATION_DECODER_CACHES_H_

#include <array>
#include <cstdint>

#include "ATen/Tensor.h"
#include "lib/models/summarizer_folder.h"

#ifdef MODELPOOL_CUDA_KERNELS
#include "lib/models/kernels/cross_attention.h"
#include "lib/models/kernels/decode_attention.h"
#endif

namespace modelpool {

// DecoderCaches
//
// The keys and values a decoder of `layers` layers keeps while it generates, allocated once for
// an instance's limits (Note [Decoder caches]), and the attention of one step over them. Not
// thread-safe: they belong to the batch being decoded.
class DecoderCaches {
 public:
  // Throws `c10::Error` when the device cannot hold them.
  DecoderCaches(int64_t layers, int64_t heads, int64_t head_dim, const SummarizerLimits& limits,
                const at::TensorOptions& options);

  // Bytes of the caches of an instance with these sizes.
  static int64_t Bytes(int64_t layers, int64_t heads, int64_t head_dim,
                       const SummarizerLimits& limits, int64_t element_bytes);

  // Makes the self-attention cache hold at least `positions` positions (at most
  // max_new_tokens), keeping what it holds; call before the step at `positions - 1`. Throws
  // `c10::Error` naming the limit when the device cannot hold it.
  void Reserve(int64_t positions);

  // Starts decoding a batch of `attention_mask.size(0)` texts with `beams` rows each, whose
  // encoder input is `attention_mask` (bool [batch, input_length], right-padded).
  void Start(const at::Tensor& attention_mask, int64_t beams);
  // Layer `layer`'s cross-attention keys and values for the batch: [batch, input_length,
  // 2 * heads * head_dim], keys first.
  void SetCross(int64_t layer, const at::Tensor& keys_values);

  // Self-attention of step `position` in `layer`: stores the keys and values of `qkv` ([rows,
  // 3, heads, head_dim]) at `position`, then attends its queries over positions [0, position],
  // scores scaled by `scale` and added to `bias` when defined (broadcast to [rows, heads, 1,
  // position + 1]). Returns [rows, heads * head_dim].
  at::Tensor SelfAttention(int64_t layer, const at::Tensor& qkv, int64_t position, double scale,
                           const at::Tensor& bias) const;
  // What the self-attention of every layer needs of a step's position, computed once a step.
  struct StepKeys {
    at::Tensor position;  // int64 [1] on the device
    at::Tensor mask;      // [1, 1, 1, capacity()], the caches' dtype: 0 up to position, then lowest
    at::Tensor used;      // int32 [rows]: position + 1; defined where flash attention runs
  };
  StepKeys KeysAt(const at::Tensor& position) const;
  // The same as SelfAttention at `keys.position`, with no host value: over every position the
  // cache holds (`capacity()`). Without `bias`, the positions past it are left out
  // (Note [Decoder attention kernels]); a `bias` must include `keys.mask`, which masks them.
  // Where decode_kernel(), `relative_bias` ([heads, L] contiguous, L above every position: key
  // t of the query at p adds entry t - p + L - 1) may stand for a `bias` of relative positions,
  // which may then be undefined.
  at::Tensor SelfAttentionAt(int64_t layer, const at::Tensor& qkv, const StepKeys& keys,
                             double scale, const at::Tensor& bias,
                             const at::Tensor& relative_bias = at::Tensor()) const;
  // Whether SelfAttentionAt runs on the decode attention kernel (Note [Decoder attention
  // kernels]).
  bool decode_kernel() const { return decode_kernel_; }
  // 0, 1, ... capacity() - 1 (int64, on the device).
  const at::Tensor& positions() const { return positions_; }
  // Positions the self-attention cache holds now.
  int64_t capacity() const { return self_.size(4); }
  // Cross-attention of `queries` ([rows, heads * head_dim]) in `layer`, scores scaled by
  // `scale`, padding masked. Returns [rows, heads * head_dim].
  at::Tensor CrossAttention(int64_t layer, const at::Tensor& queries, double scale) const;

  // Row i continues from row `parents[i]`: positions [0, length) of every layer follow.
  // `length` is at most the positions written so far.
  void Reorder(const at::Tensor& parents, int64_t length);

  int64_t rows() const { return batch_ * beams_; }

  // What a static step of the batch being decoded depends on beyond the instance: batch, beams,
  // and the input length (0 where the cross-attention reads it from the device). Two batches of
  // one shape can replay one CUDA graph of a step: everything else it reads lies at fixed
  // addresses, written in place by Start.
  std::array<int64_t, 3> StepShape() const {
    return {batch_, beams_, device_lengths() ? 0 : input_length_};
  }

 private:
  // Positions [0, length) of `layer`'s self-attention keys and values as each row of the batch
  // sees them: [2, rows, heads, length, head_dim] (Note [Beams without moving keys]).
  at::Tensor SeenByRows(int64_t layer, int64_t length) const;
  // Whether rows find their keys through sources_: the decode kernel runs, with beams.
  bool follows_sources() const { return sources_.defined() && beams_ > 1; }
  // Whether the cross-attention reads each text's input length from the device.
  bool device_lengths() const {
#ifdef MODELPOOL_CUDA_KERNELS
    if (cross_kernel()) return true;
#endif
    return flash_;
  }
#ifdef MODELPOOL_CUDA_KERNELS
  // Whether the batch's cross-attention runs on the split-key kernel, and that attention
  // (Note [Decoder attention kernels]).
  bool cross_kernel() const;
  at::Tensor SplitKeyCrossAttention(int64_t layer, const at::Tensor& queries, double scale) const;
  // The decode attention kernel for `queries` ([rows, heads, head_dim], unit strides but for
  // the rows') over `keys`: [rows, heads * head_dim].
  at::Tensor DecodeAttention(const at::Tensor& queries, const kernels::DecodeKeys& keys,
                             double scale) const;
#endif

  // The positions the self-attention cache starts with on the CPU.
  static constexpr int64_t kFirstPositions = 64;

  const int64_t heads_;
  const int64_t head_dim_;
  const SummarizerLimits limits_;
  at::Tensor self_;       // [layers, 2 (k, v), max_rows, heads, positions held, head_dim]
  at::Tensor cross_;      // [layers, 2 (k, v), max_batch, heads, max_input_tokens, head_dim]
  at::Tensor positions_;  // see positions()
  // Where the decode kernel runs, int32 [max_rows, capacity()]: the row whose cache holds row
  // r's position t (Note [Beams without moving keys]); undefined elsewhere.
  at::Tensor sources_;
  const bool flash_;          // Note [Decoder attention kernels]
  const bool decode_kernel_;  // the same
  const bool cross_kernel_;   // the same, for batches whose beams the kernel takes

  // The batch being decoded.
  int64_t batch_ = 0;
  int64_t beams_ = 0;
  int64_t input_length_ = 0;
  // The batch's tensors, each the start of a buffer allocated for the limits (see StepShape).
  at::Tensor cross_mask_;  // [batch, 1, 1, input_length]: 0, or the lowest value at padding
  // Where flash attention runs, the int32 cumulative starts of the rows' queries and keys in
  // the caches seen as tokens, and each text's input length.
  at::Tensor cross_query_starts_, cross_key_starts_, cross_lengths_;
  at::Tensor self_query_starts_, self_key_starts_;
  // The buffers behind them.
  at::Tensor cross_mask_buffer_, cross_query_starts_buffer_, cross_key_starts_buffer_,
      cross_lengths_buffer_, self_query_starts_buffer_, self_key_starts_buffer_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_DECODER_CACHES_H_
