#ifndef MODELPOOL_LIB_MODELS_FUSED_OPS_H_
#define MODELPOOL_LIB_MODELS_FUSED_OPS_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "ATen/Tensor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/kernels/small_batch_linear.h"  // SmallBatchActivation

namespace modelpool {

// Note [Fused epilogues]
// On CUDA in half precision, the work between the matrix products of a transformer layer rides
// along with them: an intermediate projection's bias and GELU (or ReLU) run in cuBLASLt's
// epilogue (at::_addmm_activation; its GELU is the tanh form, within half precision's rounding
// of the exact one), and each residual add with its LayerNorm is one kernel of our own (Note
// [Residual LayerNorm kernel]). Projections' biases are fused by at::linear already. For a
// decoder step's few rows, the small-batch kernel applies the activation instead where it runs
// (SmallBatchLinearWhereFaster). The
// encoders and decoders that use them ask CanFuseEpilogues once, at load.
// MODELPOOL_FUSED_KERNELS=0 turns both off, to compare or to fall back.

// Whether the fused forms run for activations of `width` features in `dtype` on `device`:
// CUDA, float16 or bfloat16, PyTorch 2, our kernels built, and a width the kernel takes.
bool CanFuseEpilogues(c10::Device device, c10::ScalarType dtype, int64_t width);

// activation(x · weightᵀ + bias) in one cuBLASLt call, `x` [..., in], `weight` [out, in],
// `bias` [out]; `gelu` false is ReLU. Only where CanFuseEpilogues.
at::Tensor LinearActivation(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            bool gelu);

// LayerNorm(y + residual) · weight + bias over the last dimension, written over `y`, in one
// kernel; `y` and `residual` contiguous, of the same shape. Only where CanFuseEpilogues.
at::Tensor AddLayerNorm(at::Tensor y, const at::Tensor& residual, const at::Tensor& weight,
                        const at::Tensor& bias, double eps);

// {y + residual, RMSNorm(y + residual) · weight} over the last dimension in one kernel (Note
// [Residual RMSNorm kernel]), the sum written over `y`; `y` and `residual` contiguous, of the
// same shape. Only where CanFuseEpilogues.
std::pair<at::Tensor, at::Tensor> AddRmsNorm(at::Tensor y, const at::Tensor& residual,
                                             const at::Tensor& weight, double eps);

// activation(x · weightᵀ + bias) on our small-batch kernel (Note [Small-batch linear]); `bias`
// may be undefined. Nothing runs, and the result is empty, where the kernel does not take the
// operands: more than 64 rows, a width it does not tile (inputs a multiple of 32, outputs of
// 64), not float16 or bfloat16 on a Hopper GPU, not contiguous or not 16-byte aligned, or the
// kernel not built; callers then take their cuBLAS path.
std::optional<at::Tensor> SmallBatchLinear(
    const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
    kernels::SmallBatchActivation activation = kernels::SmallBatchActivation::kNone);

// The same, only where the kernel was measured faster than cuBLAS: at most 8 rows and no more
// outputs than inputs, or one row and at most four times as many (Note [Small-batch linear]).
// What a decoder step calls.
std::optional<at::Tensor> SmallBatchLinearWhereFaster(
    const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
    kernels::SmallBatchActivation activation = kernels::SmallBatchActivation::kNone);

// Whether PackedSelfAttention runs for `heads` heads of `head_dim` in `dtype` on `device`: our
// kernels built, float16 or bfloat16, heads of 32 or 64, a GPU of compute capability 8.0 or
// later.
bool CanPackedSelfAttention(c10::Device device, c10::ScalarType dtype, int64_t heads,
                            int64_t head_dim);

// The self-attention of packed rows on our kernel (Note [Packed short-row attention]): `qkv`
// [tokens, 3 * heads * head_dim] is each token's queries, keys and values of every head, as the
// fused projection gives them (contiguous); row b is tokens starts[b] to starts[b + 1] - 1
// and row_ids[t] is token t's row (both int32 on qkv's device). Returns [tokens, heads *
// head_dim]. Only where CanPackedSelfAttention.
at::Tensor PackedSelfAttention(const at::Tensor& qkv, const at::Tensor& starts,
                               const at::Tensor& row_ids, int64_t heads, double scale);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FUSED_OPS_H_
