#ifndef MODELPOOL_LIB_MODELS_HALF_PRECISION_H_
#define MODELPOOL_LIB_MODELS_HALF_PRECISION_H_

// The two 16-bit compute types that flash attention and our kernels take.

#include "ATen/Tensor.h"
#include "c10/core/ScalarType.h"

#ifdef MODELPOOL_CUDA_KERNELS
#include "lib/models/kernels/residual_layer_norm.h"
#endif

namespace modelpool {

inline bool IsHalfPrecision(c10::ScalarType dtype) {
  return dtype == c10::ScalarType::Half || dtype == c10::ScalarType::BFloat16;
}

#ifdef MODELPOOL_CUDA_KERNELS
// Our kernels' name for the type of a float16 or bfloat16 tensor.
inline kernels::HalfType HalfTypeOf(const at::Tensor& tensor) {
  return tensor.scalar_type() == c10::ScalarType::Half ? kernels::HalfType::kFloat16
                                                       : kernels::HalfType::kBFloat16;
}
#endif

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_HALF_PRECISION_H_
