#ifndef MODELPOOL_LIB_MODELS_KERNELS_CROSS_ATTENTION_H_
#define MODELPOOL_LIB_MODELS_KERNELS_CROSS_ATTENTION_H_

#include <cstdint>

#include "lib/models/kernels/residual_layer_norm.h"

// Plain CUDA, no libtorch, as residual_layer_norm.h.

namespace modelpool::kernels {

// The encoder's keys and values a decoding step's cross-attention reads.
struct CrossKeys {
  // [texts, heads, capacity, head_dim] each, contiguous.
  const void* keys;
  const void* values;
  int64_t capacity;
  // Text b's keys are its first lengths[b] positions (int32, on the device, at most capacity).
  const int32_t* lengths;
};

// CrossAttention()
//
// One decoding step's cross-attention (Note [Split-key cross-attention]): the `beams` query
// rows of text b (rows b * beams ... b * beams + beams - 1; row r, head h at
// q + r * query_row_stride + h * head_dim) attend over text b's keys: scores scale * q · k_t,
// softmax over t, out[r][h] = Σ p_t v_t, in float32; `out` is [texts * beams, heads, head_dim],
// contiguous. q, keys and values start at 16-byte boundaries, and query_row_stride and head_dim
// are multiples of 8. `workspace` holds CrossAttentionWorkspaceBytes() bytes on the device. With
// `overlap`, the launches overlap the previous kernel on `stream` where the device takes it (Note
// [Overlapped launches]). Returns -1, launching nothing, unless CanCrossAttention; otherwise the
// launch's cudaError_t as an int (0: launched).
bool CanCrossAttention(int64_t texts, int64_t beams, int64_t heads, int64_t head_dim,
                       int64_t capacity);
int64_t CrossAttentionWorkspaceBytes(int64_t texts, int64_t beams, int64_t heads, int64_t head_dim,
                                     int64_t capacity);
int CrossAttention(HalfType type, const void* q, int64_t query_row_stride, const CrossKeys& keys,
                   float scale, void* out, void* workspace, int64_t texts, int64_t beams,
                   int64_t heads, int64_t head_dim, void* stream, bool overlap);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_CROSS_ATTENTION_H_
