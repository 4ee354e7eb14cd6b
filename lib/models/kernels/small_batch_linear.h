#ifndef MODELPOOL_LIB_MODELS_KERNELS_SMALL_BATCH_LINEAR_H_
#define MODELPOOL_LIB_MODELS_KERNELS_SMALL_BATCH_LINEAR_H_

#include <cstdint>
#include <optional>

#include "lib/models/kernels/residual_layer_norm.h"  // HalfType

// Plain CUDA, no libtorch, as the other kernels' headers.

namespace modelpool::kernels {

constexpr int64_t kSmallBatchMaxRows = 64;

// What the kernel applies to each output after the bias, in float32: GELU (the exact, erf
// form, or the tanh approximation) or ReLU.
enum class SmallBatchActivation : int { kNone, kGelu, kGeluTanh, kRelu };

// SmallBatchLinear()
//
// y[r][o] = activation(Σ_i x[r][i] · weight[o][i] + bias[o]) for `rows` rows, as a linear
// layer computes it, for the few rows of a decoder step (Note [Small-batch linear]); Hopper
// (compute capability 9) or later. `x` [rows, in], `weight` [out, in] and `y` [rows, out] are
// row-major and contiguous in `type`, `x` and `weight` 16-byte aligned; `bias` [out] may be null.
// Sums in float32, in an order that does not change between calls. CanSmallBatchLinear says which
// shapes it takes: 1 to 64 rows, `in` a multiple of 32 (whose slices fit in shared memory),
// `out` a multiple of 64. With `overlap`, the launch overlaps the previous kernel on `stream`
// where the device takes it (Note [Overlapped launches]): `weight` and `bias` are then read
// before that kernel finishes, so nothing still running on the stream may write them. Returns
// -1, launching nothing, for any other shape; otherwise the launch's cudaError_t as an int (0:
// launched).
bool CanSmallBatchLinear(int64_t rows, int64_t in, int64_t out);
// Whether the kernel runs on CUDA device `device`: compute capability 9 or later with 160 KiB of
// shared memory a block, and the kernel built for it (compute_90 or later); nullopt where CUDA
// does not answer.
std::optional<bool> SmallBatchLinearRunsOn(int device);
int SmallBatchLinear(HalfType type, const void* x, const void* weight, const void* bias, void* y,
                     int64_t rows, int64_t in, int64_t out, void* stream, bool overlap,
                     SmallBatchActivation activation = SmallBatchActivation::kNone);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_SMALL_BATCH_LINEAR_H_
