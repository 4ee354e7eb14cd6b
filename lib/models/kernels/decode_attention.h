#ifndef MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_
#define MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_

#include <cstdint>

#include "lib/models/kernels/residual_layer_norm.h"

// Plain CUDA, no libtorch, as residual_layer_norm.h.

namespace modelpool::kernels {

// DecodeAttention()
//
// One decoding step's self-attention (Note [Decode attention kernel]): for every row r < rows
// and head h < heads, the query q[r][h] (head_dim elements at q + r * query_row_stride +
// h * head_dim) attends over keys and values [rows, heads, capacity, head_dim] (contiguous) at
// positions 0..p, p = *position (int64, on the device, below capacity):
//   score_t = scale * q · k_t + relative_bias[h][t - p + bias_length - 1]  (no bias term when
//   relative_bias is null; otherwise bias_length > p), softmax over t, out[r][h] = Σ p_t v_t.
// Statistics in float32; `out` is [rows, heads, head_dim], contiguous. Returns -1, launching
// nothing, unless head_dim is at most 256 and capacity at most 8192; otherwise the launch's
// cudaError_t as an int (0: launched).
bool CanDecodeAttention(int64_t head_dim, int64_t capacity);
int DecodeAttention(HalfType type, const void* q, int64_t query_row_stride, const void* keys,
                    const void* values, const int64_t* position, const void* relative_bias,
                    int64_t bias_length, float scale, void* out, int64_t rows, int64_t heads,
                    int64_t capacity, int64_t head_dim, void* stream);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_
