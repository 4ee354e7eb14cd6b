#ifndef MODELPOOL_LIB_MODELS_KERNELS_WARP_REDUCE_CUH_
#define MODELPOOL_LIB_MODELS_KERNELS_WARP_REDUCE_CUH_

// Reductions across the 32 lanes of a warp, which every lane takes part in and gets the result
// of.

namespace modelpool::kernels {

inline __device__ float WarpSum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

inline __device__ float WarpMax(float value) {
  for (int offset = 16; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_WARP_REDUCE_CUH_
