#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "lib/models/kernels/decode_attention.h"
#include "lib/models/kernels/half_types.cuh"
#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/warp_reduce.cuh"

namespace modelpool::kernels {
namespace {

// Note [Decode attention kernel]
// A decoding step's self-attention has one query per row and head, a few hundred keys at most,
// and T5 adds a relative position bias. On matrix products it is six kernels per layer (the
// query laid out, scores, bias, softmax, the weighted sum, the output laid out), each too small
// to fill the GPU; flash attention's tiles of 128 queries are nearly empty with one query and
// take no such bias. Here one block takes one (row, head):
// - scores: a thread per key, reading the key in 16-byte vectors against the query held in
//   shared memory (no reduction across lanes), into shared memory;
// - the softmax over them in shared memory;
// - the weighted sum: each warp a quarter of the keys, its lanes over pairs of dimensions (a
//   warp reads a value row in one transaction), the warps' partial sums added in shared memory.
// Keys past the position are never read, so no mask is needed. With `sources`, each key's row
// is looked up (Note [Beams without moving keys]). The block first writes the step's own key
// and value into the caches, which saves a copy kernel per layer. The cross-attention (512 keys
// a text) is not for this kernel: run here too, with t5-large's 32 texts of 512 tokens on an
// H200, its self- and cross-attention calls of a batch took 81.5 ms against 58.4 ms for flash
// attention's cross-attention calls alone, and 191 ms against 58.9 ms with 4 beams (a block
// per beam rereads its text's keys). At that size the keys' bandwidth sets the time, and the
// per-key loops here keep too few loads in flight (Note [Split-key cross-attention]).
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxCapacity = 8192;
// A key's 16-byte vectors loaded before any is used: a key of 64 dimensions in two round trips,
// not eight (the loop's bound is only known at run time, so nothing else issues them early).
// Eight ahead took 93 registers a thread; with 4 beams (2048 blocks a step) too few blocks then
// fit on an SM, and t5-large's beam search slowed down (33.8 ms against 26.2 ms a batch).
constexpr int kLoadsAhead = 4;
constexpr int kMinBlocks = 8;  // blocks an SM holds at once: at most 64 registers a thread

// The block's max or sum of `value`; every thread gets it.
__device__ float BlockReduce(float value, bool take_max, float* scratch) {
  value = take_max ? WarpMax(value) : WarpSum(value);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  float result = scratch[0];
  for (int w = 1; w < kWarps; ++w) {
    result = take_max ? fmaxf(result, scratch[w]) : result + scratch[w];
  }
  __syncthreads();
  return result;
}

template <typename T>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    DecodeAttentionKernel(const T* __restrict__ q, int64_t query_row_stride, DecodeKeys keys,
                          float scale, T* __restrict__ out, int heads, int head_dim) {
  extern __shared__ float shared[];  // scores [capacity], then partial sums [kWarps][head_dim]
  float* scores = shared;
  float* partial = shared + keys.capacity;
  __shared__ float query[kMaxHeadDim];
  __shared__ float scratch[kWarps];
  LetNextKernelStart();
  WaitForPrecedingKernel();  // everything below reads or writes what the stream wrote
  const int64_t row = blockIdx.x / heads;
  const int head = static_cast<int>(blockIdx.x % heads);
  const int64_t p = *keys.position;
  if (p < 0 || p >= keys.capacity) return;  // never written past the cache, whatever the caller
  const int64_t n = p + 1;
  const T* q_row = q + row * query_row_stride + static_cast<int64_t>(head) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) query[d] = ToFloat(q_row[d]);
  if (keys.new_keys != nullptr) {
    // Only this block reads this row's key at p (other rows' sources never name it there), so
    // the barrier below is all that orders the write before the reads.
    const int64_t from = row * keys.new_row_stride + static_cast<int64_t>(head) * head_dim;
    const int64_t to = ((row * heads + head) * keys.capacity + p) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += kThreads) {
      static_cast<T*>(keys.keys)[to + d] = static_cast<const T*>(keys.new_keys)[from + d];
      static_cast<T*>(keys.values)[to + d] = static_cast<const T*>(keys.new_values)[from + d];
    }
  }
  __syncthreads();

  // Key t of this row and head starts at element KeyAt(t) of the keys and of the values.
  const int32_t* sources = keys.sources ? keys.sources + row * keys.capacity : nullptr;
  auto KeyAt = [&](int64_t t) {
    const int64_t key_row = sources ? sources[t] : row;
    return ((key_row * heads + head) * keys.capacity + t) * head_dim;
  };
  const T* k = static_cast<const T*>(keys.keys);
  const T* v = static_cast<const T*>(keys.values);
  const T* bias = static_cast<const T*>(keys.relative_bias);
  const int vectors = head_dim / 8;
  for (int64_t t = threadIdx.x; t < n; t += kThreads) {
    const Vec8<T>* k_t = reinterpret_cast<const Vec8<T>*>(k + KeyAt(t));
    float dot = 0.f;
    for (int first = 0; first < vectors; first += kLoadsAhead) {
      Vec8<T> chunk[kLoadsAhead];
#pragma unroll
      for (int i = 0; i < kLoadsAhead; ++i) {
        if (first + i < vectors) chunk[i] = k_t[first + i];
      }
#pragma unroll
      for (int i = 0; i < kLoadsAhead; ++i) {
        if (first + i < vectors) {
#pragma unroll
          for (int j = 0; j < 8; ++j) dot += query[8 * (first + i) + j] * ToFloat(chunk[i].v[j]);
        }
      }
    }
    float s = dot * scale;
    if (bias != nullptr) {
      s += ToFloat(
          bias[static_cast<int64_t>(head) * keys.bias_length + (t - p + keys.bias_length - 1)]);
    }
    scores[t] = s;
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

  // Lane l sums dimension pairs l, l + 32, ... over the warp's keys.
  using P = typename Pair<T>::Type;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pairs = head_dim / 2;
  float2 acc[kMaxHeadDim / 64] = {};
  for (int64_t t = warp; t < n; t += kWarps) {
    const float weight = scores[t];
    const P* v_t = reinterpret_cast<const P*>(v + KeyAt(t));
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 64; ++i) {
      const int pair = lane + 32 * i;
      if (pair < pairs) {
        const float2 value = ToFloat2(v_t[pair]);
        acc[i].x += weight * value.x;
        acc[i].y += weight * value.y;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 64; ++i) {
    const int pair = lane + 32 * i;
    if (pair < pairs) {
      partial[warp * head_dim + 2 * pair] = acc[i].x;
      partial[warp * head_dim + 2 * pair + 1] = acc[i].y;
    }
  }
  __syncthreads();
  T* o = out + (row * heads + head) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float sum = 0.f;
    for (int w = 0; w < kWarps; ++w) sum += partial[w * head_dim + d];
    o[d] = FromFloat<T>(sum * inv_sum);
  }
}

template <typename T>
int Launch(const void* q, int64_t query_row_stride, const DecodeKeys& keys, float scale, void* out,
           int64_t rows, int64_t heads, int64_t head_dim, cudaStream_t stream, bool overlap) {
  // At most (8192 + 4 * 256) floats, 36 KiB: within the default limit, so nothing to set.
  const size_t shared = static_cast<size_t>(keys.capacity + kWarps * head_dim) * sizeof(float);
  const LaunchShape shape{dim3(static_cast<unsigned>(rows * heads)), dim3(kThreads), shared};
  return LaunchKernel(DecodeAttentionKernel<T>, shape, stream, overlap, static_cast<const T*>(q),
                      query_row_stride, keys, scale, static_cast<T*>(out), static_cast<int>(heads),
                      static_cast<int>(head_dim));
}

}  // namespace

bool CanDecodeAttention(int64_t head_dim, int64_t capacity) {
  return head_dim > 0 && head_dim % 8 == 0 && head_dim <= kMaxHeadDim && capacity > 0 &&
         capacity <= kMaxCapacity;
}

int DecodeAttention(HalfType type, const void* q, int64_t query_row_stride, const DecodeKeys& keys,
                    float scale, void* out, int64_t rows, int64_t heads, int64_t head_dim,
                    void* stream, bool overlap) {
  if (!CanDecodeAttention(head_dim, keys.capacity)) return -1;
  if (rows == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  return type == HalfType::kFloat16 ? Launch<__half>(q, query_row_stride, keys, scale, out, rows,
                                                     heads, head_dim, s, overlap)
                                    : Launch<__nv_bfloat16>(q, query_row_stride, keys, scale, out,
                                                            rows, heads, head_dim, s, overlap);
}

}  // namespace modelpool::kernels
