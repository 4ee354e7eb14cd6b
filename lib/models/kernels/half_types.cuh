#ifndef MODELPOOL_LIB_MODELS_KERNELS_HALF_TYPES_CUH_
#define MODELPOOL_LIB_MODELS_KERNELS_HALF_TYPES_CUH_

// What our kernels share to read and write float16 and bfloat16: conversions to and from
// float32, 16-byte vectors of 8 elements, and the two-element type of each.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace modelpool::kernels {

template <typename T>
struct alignas(16) Vec8 {
  T v[8];
};

inline __device__ float ToFloat(__half x) { return __half2float(x); }
inline __device__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
inline __device__ float2 ToFloat2(__half2 x) { return __half22float2(x); }
inline __device__ float2 ToFloat2(__nv_bfloat162 x) { return __bfloat1622float2(x); }

template <typename T>
__device__ T FromFloat(float x);
template <>
inline __device__ __half FromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <>
inline __device__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

template <typename T>
struct Pair;
template <>
struct Pair<__half> {
  using Type = __half2;
};
template <>
struct Pair<__nv_bfloat16> {
  using Type = __nv_bfloat162;
};

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_HALF_TYPES_CUH_
