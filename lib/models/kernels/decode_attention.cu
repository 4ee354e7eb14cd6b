#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "lib/models/kernels/decode_attention.h"

namespace modelpool::kernels {
namespace {

// Note [Decode attention kernel]
// A decoding step's self-attention has one query per row and head, a few hundred keys at
// most, and T5 adds a relative position bias that flash attention does not take. On matrix
// products it is six kernels per layer (the query laid out, scores, bias, softmax, the
// weighted sum, the output laid out), each too small to fill the GPU: a step of t5-large is
// then launches, not arithmetic. Here one block takes one (row, head): its warps score the
// keys up to the position (a lane per pair of dimensions, a shuffle sum per key) into shared
// memory, the block takes the softmax there, and its threads sum the values, one dimension
// each. Keys past the position are never read, so no mask is needed.
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxCapacity = 8192;

__device__ float ToFloat(__half x) { return __half2float(x); }
__device__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ T FromFloat(float x);
template <>
__device__ __half FromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ float WarpReduce(float value, bool take_max) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, value, offset);
    value = take_max ? fmaxf(value, other) : value + other;
  }
  return value;
}

// The block's max or sum of `value`; every thread gets it.
__device__ float BlockReduce(float value, bool take_max, float* scratch) {
  value = WarpReduce(value, take_max);
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) scratch[warp] = value;
  __syncthreads();
  float result = scratch[0];
  for (int w = 1; w < kWarps; ++w)
    result = take_max ? fmaxf(result, scratch[w]) : result + scratch[w];
  __syncthreads();
  return result;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    DecodeAttentionKernel(const T* __restrict__ q, int64_t query_row_stride,
                          const T* __restrict__ keys, const T* __restrict__ values,
                          const int64_t* __restrict__ position, const T* __restrict__ bias,
                          int64_t bias_length, float scale, T* __restrict__ out, int heads,
                          int64_t capacity, int head_dim) {
  extern __shared__ float scores[];  // [capacity]
  __shared__ float query[kMaxHeadDim];
  __shared__ float scratch[kWarps];
  const int64_t row = blockIdx.x / heads;
  const int head = blockIdx.x % heads;
  const int64_t p = *position;
  const int64_t n = p + 1;
  const T* q_row = q + row * query_row_stride + static_cast<int64_t>(head) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) query[d] = ToFloat(q_row[d]);
  __syncthreads();

  const int64_t base = (row * heads + head) * capacity * head_dim;
  const T* k = keys + base;
  const T* v = values + base;
  const int lane = threadIdx.x % 32;
  for (int64_t t = threadIdx.x / 32; t < n; t += kWarps) {
    const T* k_t = k + t * head_dim;
    float dot = 0.f;
    for (int d = lane; d < head_dim; d += 32) dot += query[d] * ToFloat(k_t[d]);
    dot = WarpReduce(dot, /*take_max=*/false);
    if (lane == 0) {
      float s = dot * scale;
      if (bias != nullptr) s += ToFloat(bias[head * bias_length + (t - p + bias_length - 1)]);
      scores[t] = s;
    }
  }
  __syncthreads();

  float local_max = -FLT_MAX;
  for (int64_t t = threadIdx.x; t < n; t += kThreads) local_max = fmaxf(local_max, scores[t]);
  const float max_score = BlockReduce(local_max, /*take_max=*/true, scratch);
  float local_sum = 0.f;
  for (int64_t t = threadIdx.x; t < n; t += kThreads) {
    const float e = __expf(scores[t] - max_score);
    scores[t] = e;
    local_sum += e;
  }
  const float inv_sum = 1.f / BlockReduce(local_sum, /*take_max=*/false, scratch);

  T* o = out + (row * heads + head) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float acc = 0.f;
    for (int64_t t = 0; t < n; ++t) acc += scores[t] * ToFloat(v[t * head_dim + d]);
    o[d] = FromFloat<T>(acc * inv_sum);
  }
}

template <typename T>
int Launch(const void* q, int64_t query_row_stride, const void* keys, const void* values,
           const int64_t* position, const void* bias, int64_t bias_length, float scale, void* out,
           int64_t rows, int64_t heads, int64_t capacity, int64_t head_dim, cudaStream_t stream) {
  // At most 32 KiB (kMaxCapacity floats): within the default limit, so nothing to set.
  const size_t shared = static_cast<size_t>(capacity) * sizeof(float);
  DecodeAttentionKernel<T><<<static_cast<unsigned>(rows * heads), kThreads, shared, stream>>>(
      static_cast<const T*>(q), query_row_stride, static_cast<const T*>(keys),
      static_cast<const T*>(values), position, static_cast<const T*>(bias), bias_length, scale,
      static_cast<T*>(out), static_cast<int>(heads), capacity, static_cast<int>(head_dim));
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

bool CanDecodeAttention(int64_t head_dim, int64_t capacity) {
  return head_dim > 0 && head_dim <= kMaxHeadDim && capacity > 0 && capacity <= kMaxCapacity;
}

int DecodeAttention(HalfType type, const void* q, int64_t query_row_stride, const void* keys,
                    const void* values, const int64_t* position, const void* relative_bias,
                    int64_t bias_length, float scale, void* out, int64_t rows, int64_t heads,
                    int64_t capacity, int64_t head_dim, void* stream) {
  if (!CanDecodeAttention(head_dim, capacity)) return -1;
  if (rows == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  return type == HalfType::kFloat16
             ? Launch<__half>(q, query_row_stride, keys, values, position, relative_bias,
                              bias_length, scale, out, rows, heads, capacity, head_dim, s)
             : Launch<__nv_bfloat16>(q, query_row_stride, keys, values, position, relative_bias,
                                     bias_length, scale, out, rows, heads, capacity, head_dim, s);
}

}  // namespace modelpool::kernels
