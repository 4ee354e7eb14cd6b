#ifndef MODELPOOL_LIB_MODELS_KERNELS_PACKED_ATTENTION_H_
#define MODELPOOL_LIB_MODELS_KERNELS_PACKED_ATTENTION_H_

#include <cstdint>
#include <optional>

#include "lib/models/kernels/residual_layer_norm.h"  // HalfType

// Plain CUDA, no libtorch, as the other kernels' headers.

namespace modelpool::kernels {

// PackedAttention()
//
// An encoder's self-attention over packed rows (Note [Packed short-row attention]), heads of
// 32 or 64 (CanPackedAttention): row b is
// tokens starts[b] to starts[b + 1] - 1, and row_ids[t] is token t's row (int32, on the
// device; `starts` ends at `tokens`), and a row's tokens attend to each other only, with no
// mask. Token t's query, key and value of head h are the head_dim elements at qkv + t *
// token_stride + h * head_dim, then + hidden, then + 2 * hidden (hidden = heads * head_dim: the
// fused projection's output); out (tokens x hidden, contiguous) gets softmax(scale * q · k) · v
// in `type`, the scores and their sums in float32, the probabilities rounded to `type` for the
// second product. qkv and out start at 16-byte boundaries and token_stride is a multiple of 8.
// Rows share tiles of 64 tokens: a key of another row gets probability 0, but an infinite or
// NaN value there still turns this row's output into NaN (0 · inf). Returns -1, launching
// nothing, unless CanPackedAttention, 0 <= tokens <= 2^31 - 65 and scale is positive and
// finite; otherwise the launch's cudaError_t as an int (0: launched, or no tokens).
bool CanPackedAttention(int64_t heads, int64_t head_dim);
int PackedAttention(HalfType type, const void* qkv, int64_t token_stride, const int32_t* starts,
                    const int32_t* row_ids, int64_t tokens, int64_t heads, int64_t head_dim,
                    float scale, void* out, void* stream);

// Whether the kernel runs on `device`: compute capability 8.0 or later, in a build with code
// for it; nullopt where CUDA could not tell.
std::optional<bool> PackedAttentionRunsOn(int device);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_PACKED_ATTENTION_H_
