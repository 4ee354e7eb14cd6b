#ifndef MODELPOOL_LIB_MODELS_FLASH_ATTENTION_H_
#define MODELPOOL_LIB_MODELS_FLASH_ATTENTION_H_

#include <cstdint>

#include "ATen/Tensor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"

namespace modelpool {

// Whether `device` is a GPU of compute capability 8.0 (Ampere) or later, in a build whose
// libtorch has CUDA: what flash attention needs, and our own kernels (built for 8.0 and 9.0).
bool IsAmpereOrLater(c10::Device device);

// Whether flash attention runs here: CUDA on IsAmpereOrLater, PyTorch 2, float16 or bfloat16, a
// head size that is a multiple of 8 up to 256.
bool CanFlashAttention(c10::Device device, c10::ScalarType dtype, int64_t head_dim);

// Flash attention in its variable-length form: `queries` [query tokens, heads, head_dim] and
// `keys`, `values` [key tokens, heads, head_dim] (any token and head strides, the last dimension
// contiguous); row b's queries start at token query_starts[b] and its keys at key_starts[b]
// (int32, rows + 1 entries each); a row uses the keys up to the next row's start, or
// keys_used[b] of them when `keys_used` (int32 [rows]) is defined. Returns [query tokens,
// heads, head_dim]. Only where CanFlashAttention.
at::Tensor FlashAttention(const at::Tensor& queries, const at::Tensor& keys,
                          const at::Tensor& values, const at::Tensor& query_starts,
                          int64_t max_queries, const at::Tensor& key_starts, int64_t max_keys,
                          double scale, const at::Tensor& keys_used = at::Tensor());

// 0, step, 2 * step, ... count * step: int32 on `device`, the starts of rows of `step` tokens.
at::Tensor EvenStarts(int64_t count, int64_t step, c10::Device device);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FLASH_ATTENTION_H_
