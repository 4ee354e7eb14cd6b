#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "lib/models/kernels/cross_attention.h"
#include "lib/models/kernels/half_types.cuh"
#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/warp_reduce.cuh"

namespace modelpool::kernels {
namespace {

// Note [Split-key cross-attention]
// A decoding step's cross-attention reads every key and value of the encoder's output, once
// per layer and step: 64 MiB a layer for 32 texts of 512 tokens at t5-large's size, for 32 to
// 128 queries. Its time is the time to read them. Flash attention gives a (text, head) one
// block, which walks the keys in turn: 512 blocks for 32 texts of 16 heads, too few loads in
// flight to reach the memory's bandwidth. Here, as in flash-decoding, the keys of each
// (text, head) are split into `splits` parts of about equal size, each a block's:
// - the block's lanes read keys in 16-byte vectors, head_dim / 8 lanes a key, so that a warp
//   reads whole rows at once, four rows in flight per lane;
// - all the beams of a text are the block's queries, so its keys are read once, not per beam;
// - each part's scores stay in shared memory; their maximum, the sum of their exponentials and
//   the part's unnormalized weighted sum of values go to a workspace in float32, and a second
//   kernel combines the parts (the maxima rescale each part's sums). With one part the first
//   kernel writes the output.
// Parts are sized from each text's length, read on the device, so a CUDA graph replays the
// launch for any lengths, and padding is never read.
// Measured on an H200 (generate_profile, 32 texts of 512 tokens, 64 steps in CUDA graphs): one
// beam, t5-large's cross-attention took 34.8 ms a batch here (parts and combining) against
// 58.7 ms on flash attention, bart-large-cnn's 17.5 ms against 31.0 ms. With 4 beams, where
// each key meets four queries, it took 69.8 ms against 58.5 ms and 34.9 against 31.0:
// flash attention's matrix units do that work better than these lanes' dot products. So
// decoders run it for one beam, and for more only where flash attention does not run.
// Combining in the last block of each (text, head) to finish (a counter a pair) instead of a
// second kernel removed 1,536 launches a batch but made the parts 5.6 ms slower (each block
// fences its writes before it counts itself), and the batch was no faster: 13,986 against
// 14,048 new tokens/s for t5-large, 26,126 against 26,593 for bart-large-cnn.
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;
constexpr int kMaxBeams = 8;
constexpr int kMaxHeadDim = 256;
// Keys a block takes at most: its scores stay in 32 KiB of shared memory with 8 beams.
constexpr int64_t kMaxPart = 1024;
// Blocks a launch aims at: a few waves over the 132 SMs of an H100 or H200 (3 to 8 blocks fit
// on an SM, by the registers of 8 to 1 beams), so that every SM keeps reading.
constexpr int64_t kTargetBlocks = 2048;
// Keys a block takes at least, where more parts would only add to the combining.
constexpr int64_t kMinPart = 32;

int64_t Splits(int64_t texts, int64_t heads, int64_t capacity) {
  if (texts <= 0 || heads <= 0 || capacity <= 0) return 1;
  int64_t splits = (kTargetBlocks + texts * heads - 1) / (texts * heads);
  splits = std::min(splits, (capacity + kMinPart - 1) / kMinPart);
  return std::max({splits, (capacity + kMaxPart - 1) / kMaxPart, int64_t{1}});
}

struct Workspace {
  float* sums;            // [splits, rows, heads, head_dim]: Σ exp(s_t - max) v_t of a part
  float2* max_and_total;  // [splits, rows, heads]: the part's max score, Σ exp(s_t - max)
};

// Grid (splits, heads, texts). `Beams` bounds the beams, for the registers it takes.
template <typename T, int Beams>
__global__ void __launch_bounds__(kThreads)
    PartKernel(const T* __restrict__ q, int64_t query_row_stride, CrossKeys keys, float scale,
               int beams, int heads, int head_dim, T* __restrict__ out, Workspace workspace) {
  extern __shared__ float shared[];  // scores [beams][part], later sums [kWarps][beams][head_dim]
  __shared__ float beam_max[Beams], beam_total[Beams];
  LetNextKernelStart();
  WaitForPrecedingKernel();  // the lengths, the queries and the encoder's keys are the stream's
  const int split = blockIdx.x, splits = gridDim.x, head = blockIdx.y, text = blockIdx.z;
  const int length = keys.lengths[text];
  const int part = (length + splits - 1) / splits;
  const int begin = min(length, split * part);
  const int n = min(length, begin + part) - begin;

  const int lanes_per_key = head_dim / 8;
  const int keys_per_warp = 32 / lanes_per_key;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slot = lane % lanes_per_key, key_in_warp = lane / lanes_per_key;
  const int step = kWarps * keys_per_warp;
  const int64_t first =
      ((static_cast<int64_t>(text) * heads + head) * keys.capacity + begin) * lanes_per_key;
  const Vec8<T>* k = reinterpret_cast<const Vec8<T>*>(keys.keys) + first;
  const Vec8<T>* v = reinterpret_cast<const Vec8<T>*>(keys.values) + first;

  float query[Beams][8] = {};  // zeros past `beams`, so that loops need not stop there
#pragma unroll
  for (int b = 0; b < Beams; ++b) {
    if (b < beams) {
      const int64_t row = static_cast<int64_t>(text) * beams + b;
      const Vec8<T> chunk = *reinterpret_cast<const Vec8<T>*>(
          q + row * query_row_stride + static_cast<int64_t>(head) * head_dim + slot * 8);
#pragma unroll
      for (int j = 0; j < 8; ++j) query[b][j] = ToFloat(chunk.v[j]) * scale;
    }
  }

  // This lane's kUnroll vectors of `rows` (the keys or the values) from the warp's key w0 on,
  // zeros past the part.
  auto load = [&](const Vec8<T>* rows, int w0, Vec8<T>(&chunks)[kUnroll]) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = w0 + u * step + key_in_warp;
      chunks[u] = t < n ? rows[static_cast<int64_t>(t) * lanes_per_key + slot] : Vec8<T>{};
    }
  };

  // Scores. The loop bound is the warp's, so that every lane takes part in the shuffles.
  float* scores = shared;
  for (int w0 = warp * keys_per_warp; w0 < n; w0 += step * kUnroll) {
    Vec8<T> chunks[kUnroll];
    load(k, w0, chunks);
    // Every dot product first, then the shuffles that add up a key's lanes, all of a round
    // at once: independent, so their latencies overlap.
    float dots[kUnroll][Beams];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int b = 0; b < Beams; ++b) {
        dots[u][b] = 0.f;
#pragma unroll
        for (int j = 0; j < 8; ++j) dots[u][b] += query[b][j] * ToFloat(chunks[u].v[j]);
      }
    }
    for (int offset = lanes_per_key / 2; offset > 0; offset /= 2) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int b = 0; b < Beams; ++b)
          dots[u][b] += __shfl_xor_sync(0xffffffffu, dots[u][b], offset);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = w0 + u * step + key_in_warp;
#pragma unroll
      for (int b = 0; b < Beams; ++b) {
        if (slot == 0 && t < n && b < beams) scores[b * n + t] = dots[u][b];
      }
    }
  }
  __syncthreads();

  for (int b = warp; b < beams; b += kWarps) {
    float max_score = -FLT_MAX;
    for (int t = lane; t < n; t += 32) max_score = fmaxf(max_score, scores[b * n + t]);
    max_score = WarpMax(max_score);
    float total = 0.f;
    for (int t = lane; t < n; t += 32) {
      const float e = __expf(scores[b * n + t] - max_score);
      scores[b * n + t] = e;
      total += e;
    }
    total = WarpSum(total);
    if (lane == 0) {
      beam_max[b] = max_score;
      beam_total[b] = total;
    }
  }
  __syncthreads();

  float acc[Beams][8] = {};
  for (int w0 = warp * keys_per_warp; w0 < n; w0 += step * kUnroll) {
    Vec8<T> chunks[kUnroll];
    load(v, w0, chunks);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = w0 + u * step + key_in_warp;
#pragma unroll
      for (int b = 0; b < Beams; ++b) {
        const float p = t < n && b < beams ? scores[b * n + t] : 0.f;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[b][j] += p * ToFloat(chunks[u].v[j]);
      }
    }
  }
  // The lanes of one slot (the same 8 dimensions of other keys) add up theirs.
  for (int offset = lanes_per_key; offset < 32; offset *= 2) {
#pragma unroll
    for (int b = 0; b < Beams; ++b) {
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[b][j] += __shfl_xor_sync(0xffffffffu, acc[b][j], offset);
    }
  }
  __syncthreads();  // the scores are read; their space takes the warps' sums
  float* warp_sums = shared;
  if (key_in_warp == 0) {
#pragma unroll
    for (int b = 0; b < Beams; ++b) {
      if (b >= beams) continue;
#pragma unroll
      for (int j = 0; j < 8; ++j)
        warp_sums[(warp * beams + b) * head_dim + slot * 8 + j] = acc[b][j];
    }
  }
  __syncthreads();

  const int64_t rows = static_cast<int64_t>(gridDim.z) * beams;
  for (int i = threadIdx.x; i < beams * head_dim; i += kThreads) {
    const int b = i / head_dim, d = i % head_dim;
    float sum = 0.f;
    for (int w = 0; w < kWarps; ++w) sum += warp_sums[(w * beams + b) * head_dim + d];
    const int64_t row_head = (static_cast<int64_t>(text) * beams + b) * heads + head;
    if (splits == 1) {
      out[row_head * head_dim + d] = FromFloat<T>(beam_total[b] > 0.f ? sum / beam_total[b] : 0.f);
    } else {
      const int64_t at = split * rows * heads + row_head;
      workspace.sums[at * head_dim + d] = sum;
      if (d == 0) workspace.max_and_total[at] = make_float2(beam_max[b], beam_total[b]);
    }
  }
}

// A block per (row, head): the parts' sums rescaled to the largest maximum, divided by the
// rescaled total.
template <typename T>
__global__ void CombineKernel(Workspace workspace, int splits, int64_t row_heads, int head_dim,
                              T* __restrict__ out) {
  LetNextKernelStart();
  WaitForPrecedingKernel();
  const int64_t row_head = blockIdx.x;
  float max_score = -FLT_MAX;
  for (int s = 0; s < splits; ++s) {
    max_score = fmaxf(max_score, workspace.max_and_total[s * row_heads + row_head].x);
  }
  float total = 0.f;
  for (int s = 0; s < splits; ++s) {
    const float2 part = workspace.max_and_total[s * row_heads + row_head];
    total += part.y * __expf(part.x - max_score);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) {
      const float2 part = workspace.max_and_total[s * row_heads + row_head];
      sum += workspace.sums[(s * row_heads + row_head) * head_dim + d] * __expf(part.x - max_score);
    }
    out[row_head * head_dim + d] = FromFloat<T>(total > 0.f ? sum / total : 0.f);
  }
}

template <typename T, int Beams>
int Launch(const void* q, int64_t query_row_stride, const CrossKeys& keys, float scale, void* out,
           void* workspace, int64_t texts, int64_t beams, int64_t heads, int64_t head_dim,
           cudaStream_t stream, bool overlap) {
  const int64_t splits = Splits(texts, heads, keys.capacity);
  const int64_t part = (keys.capacity + splits - 1) / splits;
  const size_t shared =
      static_cast<size_t>(std::max(beams * part, kWarps * beams * head_dim)) * sizeof(float);
  const int64_t row_heads = texts * beams * heads;
  Workspace parts{static_cast<float*>(workspace), nullptr};
  parts.max_and_total =
      reinterpret_cast<float2*>(parts.sums + (splits > 1 ? splits * row_heads * head_dim : 0));
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(heads),
                  static_cast<unsigned>(texts));
  const int error = LaunchKernel(PartKernel<T, Beams>, LaunchShape{grid, dim3(kThreads), shared},
                                 stream, overlap, static_cast<const T*>(q), query_row_stride, keys,
                                 scale, static_cast<int>(beams), static_cast<int>(heads),
                                 static_cast<int>(head_dim), static_cast<T*>(out), parts);
  if (error != 0 || splits == 1) return error;
  const unsigned threads = static_cast<unsigned>((head_dim + 31) / 32 * 32);
  return LaunchKernel(CombineKernel<T>,
                      LaunchShape{dim3(static_cast<unsigned>(row_heads)), dim3(threads)}, stream,
                      overlap, parts, static_cast<int>(splits), row_heads,
                      static_cast<int>(head_dim), static_cast<T*>(out));
}

template <typename T>
int LaunchFor(int64_t beams, const void* q, int64_t query_row_stride, const CrossKeys& keys,
              float scale, void* out, void* workspace, int64_t texts, int64_t heads,
              int64_t head_dim, cudaStream_t stream, bool overlap) {
  if (beams == 1) {
    return Launch<T, 1>(q, query_row_stride, keys, scale, out, workspace, texts, beams, heads,
                        head_dim, stream, overlap);
  }
  if (beams <= 4) {
    return Launch<T, 4>(q, query_row_stride, keys, scale, out, workspace, texts, beams, heads,
                        head_dim, stream, overlap);
  }
  return Launch<T, kMaxBeams>(q, query_row_stride, keys, scale, out, workspace, texts, beams, heads,
                              head_dim, stream, overlap);
}

}  // namespace

bool CanCrossAttention(int64_t texts, int64_t beams, int64_t heads, int64_t head_dim,
                       int64_t capacity) {
  // head_dim / 8 lanes a key must divide a warp: 8 to 256 in powers of two.
  const bool lanes_divide_warp =
      head_dim >= 8 && head_dim <= kMaxHeadDim && (head_dim & (head_dim - 1)) == 0;
  // Texts and heads are the grid's z and y, at most 65,535 each; the combining kernel's grid
  // has a block per row and head.
  return lanes_divide_warp && texts >= 0 && texts <= 65535 && heads >= 1 && heads <= 65535 &&
         beams >= 1 && beams <= kMaxBeams && texts * beams * heads <= INT32_MAX && capacity > 0 &&
         capacity <= (int64_t{1} << 30);
}

int64_t CrossAttentionWorkspaceBytes(int64_t texts, int64_t beams, int64_t heads, int64_t head_dim,
                                     int64_t capacity) {
  const int64_t splits = Splits(texts, heads, capacity);
  if (splits == 1) return 0;
  const int64_t row_heads = texts * beams * heads;
  return splits * row_heads *
         (head_dim * static_cast<int64_t>(sizeof(float)) + static_cast<int64_t>(sizeof(float2)));
}

int CrossAttention(HalfType type, const void* q, int64_t query_row_stride, const CrossKeys& keys,
                   float scale, void* out, void* workspace, int64_t texts, int64_t beams,
                   int64_t heads, int64_t head_dim, void* stream, bool overlap) {
  if (!CanCrossAttention(texts, beams, heads, head_dim, keys.capacity)) return -1;
  if (texts == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  return type == HalfType::kFloat16
             ? LaunchFor<__half>(beams, q, query_row_stride, keys, scale, out, workspace, texts,
                                 heads, head_dim, s, overlap)
             : LaunchFor<__nv_bfloat16>(beams, q, query_row_stride, keys, scale, out, workspace,
                                        texts, heads, head_dim, s, overlap);
}

}  // namespace modelpool::kernels
