#ifndef MODELPOOL_LIB_MODELS_KERNELS_RESIDUAL_LAYER_NORM_H_
#define MODELPOOL_LIB_MODELS_KERNELS_RESIDUAL_LAYER_NORM_H_

#include <cstdint>

// Plain CUDA, no libtorch, so that nvcc compiles it alone; callers pass raw pointers and the
// stream to run on (as a `void*`, a `cudaStream_t`).

namespace modelpool::kernels {

enum class HalfType { kFloat16, kBFloat16 };

// ResidualLayerNorm()
//
// out[r] = LayerNorm(x[r] + residual[r]) * weight + bias for `rows` rows of `width` elements,
// all row-major and contiguous, in `type`, statistics in float32. `out` may be `x` or
// `residual`. With `overlap`, the launch overlaps the previous kernel on `stream` where the
// device takes it (Note [Overlapped launches]): `weight` and `bias` are then read before that
// kernel finishes, so nothing still running on the stream may write them. Returns -1, launching
// nothing, when `width` is not a multiple of 8 or is over 8192; otherwise the launch's
// cudaError_t as an int (0: launched).
bool CanResidualLayerNorm(int64_t width);
int ResidualLayerNorm(HalfType type, const void* x, const void* residual, const void* weight,
                      const void* bias, void* out, int64_t rows, int64_t width, float eps,
                      void* stream, bool overlap);

// ResidualRmsNorm()
//
// sum_out[r] = x[r] + residual[r] (rounded to `type`), out[r] = weight * RMSNorm(sum_out[r])
// (Note [Residual RMSNorm kernel]); the same layouts, widths and `overlap` as ResidualLayerNorm.
// `sum_out` may be `x` or `residual`; `out` is neither.
int ResidualRmsNorm(HalfType type, const void* x, const void* residual, const void* weight,
                    void* sum_out, void* out, int64_t rows, int64_t width, float eps, void* stream,
                    bool overlap);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_RESIDUAL_LAYER_NORM_H_
