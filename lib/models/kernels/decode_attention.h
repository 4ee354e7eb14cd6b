#ifndef MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_
#define MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_

#include <cstdint>

#include "lib/models/kernels/residual_layer_norm.h"

// Plain CUDA, no libtorch, as residual_layer_norm.h.

namespace modelpool::kernels {

// Where a decoding step's queries find their keys.
struct DecodeKeys {
  // [rows, heads, capacity, head_dim] each, contiguous.
  void* keys;
  void* values;
  int64_t capacity;
  // Query row r's key t lies in key row sources[r * capacity + t] (int32, on the device), or in
  // key row r when null: beams reordered without moving their keys.
  const int32_t* sources;
  // Row r attends to its first *position + 1 keys (int64, on the device: the step's own
  // position).
  const int64_t* position;
  // Key t adds relative_bias[h][t - p + bias_length - 1] (T5's relative positions;
  // bias_length > p), or nothing when null.
  const void* relative_bias;
  int64_t bias_length;
  // This step's key and value of row r and head h, at new_keys + r * new_row_stride + h *
  // head_dim (new_values likewise), which the kernel writes at row r's position before reading
  // the keys; or null where the caller has written them.
  const void* new_keys;
  const void* new_values;
  int64_t new_row_stride;
};

// DecodeAttention()
//
// One decoding step's self-attention (Note [Decode attention kernel]): for every row r < rows
// and head h < heads, q[r][h] (head_dim elements at q + r * query_row_stride + h * head_dim)
// attends over its keys: score_t = scale * q · k_t (+ bias), softmax over t, out[r][h] =
// Σ p_t v_t, in float32; `out` is [rows, heads, head_dim], contiguous. With `overlap`, the
// launch overlaps the previous kernel on `stream` where the device takes it (Note [Overlapped
// launches]). Returns -1, launching nothing, unless CanDecodeAttention; otherwise the launch's
// cudaError_t as an int (0: launched).
bool CanDecodeAttention(int64_t head_dim, int64_t capacity);
int DecodeAttention(HalfType type, const void* q, int64_t query_row_stride, const DecodeKeys& keys,
                    float scale, void* out, int64_t rows, int64_t heads, int64_t head_dim,
                    void* stream, bool overlap);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_DECODE_ATTENTION_H_
