#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <optional>

#include "lib/models/kernels/packed_attention.h"
#include "lib/models/kernels/tensor_cores.cuh"

namespace modelpool::kernels {
namespace {

// Note [Packed short-row attention]
// An embedding batch is many short rows packed end to end: in the bench corpus, half the
// texts are under 80 tokens and the token-weighted mean length is about 200. Flash attention
// takes such rows in tiles of 128 queries by 128 keys (head size 64), so a row of 70 tokens
// costs as much as one of 128, and a block of 4 warps holds each SM's share of the work for
// longer than the short rows need.
//
// Here a block takes 64 queries of one row and head, 16 per warp, and walks the row's keys 64
// at a time: the scores of its 16 queries and 64 keys on the tensor cores (mma m16n8k16, the
// queries' fragments loaded once and kept in registers), the softmax kept online in float32
// (each row's running maximum and sum, in base 2 with the scale folded in), the probabilities
// rounded to the input type and multiplied by the values on the tensor cores again. The next
// keys and values are copied into shared memory (cp.async) while the current ones are used.
// Keys and values past the row's end are zeros and their scores -inf, so no other row's
// tokens and no stale shared memory reach a result. Shared memory rows are 128 bytes, so the
// 16-byte chunks of each row are permuted by its low 3 bits (XOR), and the 8 rows one
// ldmatrix reads at one column fall in 8 different bank groups.
//
// Grid: (rows, query tiles of the longest row, heads); a block whose queries start past its
// row's end returns at once (rows are sorted by length before they are cut into batches, so
// such blocks are few).
//
// Measured (H200, bert-large fp16, the bench corpus, `tools/gpu_steps.sh ab_embed` and
// `profile_embed`): attention went from 16% of the kernel time on flash attention to 14.6%,
// and the embeddings from 753-759k to 771-780k tokens/s. Attention still runs far from the
// tensor cores' speed (about 110 TFLOP/s of useful work by our count); where the rest of its
// time goes was not profiled further.

constexpr int kHeadDim = 64;
constexpr int kTile = 64;  // queries a block; keys a step
constexpr int kWarps = kTile / 16;
constexpr int kThreads = 32 * kWarps;
constexpr int kChunks = kHeadDim / 8;             // 16-byte chunks of a row
constexpr int kTileBytes = kTile * kHeadDim * 2;  // one tile of queries, keys or values
constexpr int kSharedBytes = 5 * kTileBytes;      // queries, then keys and values twice
constexpr int kMaxQueryTiles = 65535;             // the grid's y limit
// Blocks an SM holds at once: at most 128 registers a thread (3 blocks of 152 registers were
// about 1% slower on bert-large's embeddings).
constexpr int kBlocksPerSm = 4;

__device__ __forceinline__ uint32_t Swizzled(int row, int chunk) {
  return static_cast<uint32_t>(row * (kHeadDim * 2) + ((chunk ^ (row & 7)) * 16));
}

// 16 bytes from `source` to shared `destination`, or 16 zero bytes where !valid (then
// `source` is not read).
__device__ __forceinline__ void CopyAsync(uint32_t destination, const void* source, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(destination), "l"(source),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void CommitCopies() { asm volatile("cp.async.commit_group;"); }
// Waits until at most one group of copies is still under way.
__device__ __forceinline__ void WaitCopiesButOne() { asm volatile("cp.async.wait_group 1;"); }

template <typename T>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    PackedAttentionKernel(const T* __restrict__ qkv, int64_t token_stride, int hidden,
                          const int32_t* __restrict__ starts, float scale_log2,
                          T* __restrict__ out) {
  const int row = blockIdx.x, head = blockIdx.z;
  const int start = starts[row];
  const int length = starts[row + 1] - start;
  const int first_query = blockIdx.y * kTile;
  if (first_query >= length) return;

  __shared__ __align__(128) uint8_t shared[kSharedBytes];
  const uint32_t queries = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  const auto keys = [&](int buffer) { return queries + (1 + buffer) * kTileBytes; };
  const auto values = [&](int buffer) { return queries + (3 + buffer) * kTileBytes; };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T* base = qkv + static_cast<int64_t>(start) * token_stride + head * kHeadDim;
  // Tokens first ... first + 63 of the row, part 0 (queries), 1 (keys) or 2 (values).
  const auto load = [&](uint32_t tile, int part, int first) {
#pragma unroll
    for (int i = 0; i < kTile * kChunks / kThreads; ++i) {
      const int index = static_cast<int>(threadIdx.x) + i * kThreads;
      const int r = index / kChunks, chunk = index % kChunks;
      const bool valid = first + r < length;
      const T* source = valid ? base + (first + r) * token_stride + part * hidden + chunk * 8 : qkv;
      CopyAsync(tile + Swizzled(r, chunk), source, valid);
    }
  };
  load(queries, 0, first_query);
  load(keys(0), 1, 0);
  load(values(0), 2, 0);
  CommitCopies();

  uint32_t q[kHeadDim / 16][4];   // the warp's 16 queries as A fragments, 16 dimensions each
  float o[kHeadDim / 8][4] = {};  // outputs, 8 dimensions each, unnormalized
  // This lane's two query rows (lane / 4 and lane / 4 + 8 of the warp's): the running maximum
  // of the scores (unscaled) and the sum of exp2(scale_log2 * (score - maximum)).
  float maximum[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
  const int key_tiles = (length + kTile - 1) / kTile;
  for (int tile = 0; tile < key_tiles; ++tile) {
    const int buffer = tile & 1;
    if (tile + 1 < key_tiles) {
      load(keys(buffer ^ 1), 1, (tile + 1) * kTile);
      load(values(buffer ^ 1), 2, (tile + 1) * kTile);
    }
    CommitCopies();  // possibly empty: the wait below then always leaves the newest group
    WaitCopiesButOne();
    __syncthreads();
    // Scores: s[n] holds keys 8n ... 8n + 7 of this tile (C fragments). The queries' A
    // fragments are read again each step rather than held: the registers they would take
    // keep a fourth block on each SM.
    float s[kTile / 8][4] = {};
#pragma unroll
    for (int k = 0; k < kHeadDim / 16; ++k) {
      uint32_t q[4];
      LoadMatrices(queries + Swizzled(warp * 16 + lane % 16, 2 * k + lane / 16), q);
#pragma unroll
      for (int n = 0; n < kTile / 16; ++n) {
        uint32_t b[4];
        LoadMatrices(
            keys(buffer) + Swizzled(16 * n + lane % 8 + (lane / 16) * 8, 2 * k + (lane / 8) % 2),
            b);
        Mma<T>(s[2 * n], q[0], q[1], q[2], q[3], b[0], b[1]);
        Mma<T>(s[2 * n + 1], q[0], q[1], q[2], q[3], b[2], b[3]);
      }
    }
    const int past_end =
        length - tile * kTile;  // keys of this tile at or after it are not the row's
    if (past_end < kTile) {
#pragma unroll
      for (int n = 0; n < kTile / 8; ++n) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (8 * n + 2 * (lane % 4) + j % 2 >= past_end) s[n][j] = -INFINITY;
        }
      }
    }
    // The online softmax. Every tile holds at least one of the row's keys, so each maximum is
    // finite from the first tile on.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_maximum = -INFINITY;
#pragma unroll
      for (int n = 0; n < kTile / 8; ++n) {
        tile_maximum = fmaxf(tile_maximum, fmaxf(s[n][2 * half], s[n][2 * half + 1]));
      }
      tile_maximum = fmaxf(tile_maximum, __shfl_xor_sync(0xffffffffu, tile_maximum, 1));
      tile_maximum = fmaxf(tile_maximum, __shfl_xor_sync(0xffffffffu, tile_maximum, 2));
      const float new_maximum = fmaxf(maximum[half], tile_maximum);
      const float rescale = exp2f((maximum[half] - new_maximum) * scale_log2);
      maximum[half] = new_maximum;
      sum[half] *= rescale;
#pragma unroll
      for (int d = 0; d < kHeadDim / 8; ++d) {
        o[d][2 * half] *= rescale;
        o[d][2 * half + 1] *= rescale;
      }
      const float offset = new_maximum * scale_log2;
#pragma unroll
      for (int n = 0; n < kTile / 8; ++n) {
#pragma unroll
        for (int j = 2 * half; j < 2 * half + 2; ++j) {
          s[n][j] = exp2f(fmaf(s[n][j], scale_log2, -offset));
          sum[half] += s[n][j];
        }
      }
    }
    // Outputs += probabilities · values: keys 16j ... 16j + 15 are the A fragment of the scores'
    // C fragments 2j and 2j + 1.
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      const uint32_t a0 = PackPair<T>(s[2 * j][0], s[2 * j][1]);
      const uint32_t a1 = PackPair<T>(s[2 * j][2], s[2 * j][3]);
      const uint32_t a2 = PackPair<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
      const uint32_t a3 = PackPair<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
      for (int d = 0; d < kHeadDim / 16; ++d) {
        uint32_t b[4];
        LoadMatricesTransposed(
            values(buffer) + Swizzled(16 * j + lane % 8 + ((lane / 8) % 2) * 8, 2 * d + lane / 16),
            b);
        Mma<T>(o[2 * d], a0, a1, a2, a3, b[0], b[1]);
        Mma<T>(o[2 * d + 1], a0, a1, a2, a3, b[2], b[3]);
      }
    }
    __syncthreads();  // before the next step's copies overwrite the other buffers
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float total = sum[half];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const int query = first_query + warp * 16 + lane / 4 + 8 * half;
    if (query >= length) continue;
    const float inverse = 1.f / total;
    T* destination =
        out + static_cast<int64_t>(start + query) * hidden + head * kHeadDim + 2 * (lane % 4);
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d) {
      *reinterpret_cast<uint32_t*>(destination + 8 * d) =
          PackPair<T>(o[d][2 * half] * inverse, o[d][2 * half + 1] * inverse);
    }
  }
}

}  // namespace

bool CanPackedAttention(int64_t heads, int64_t head_dim, int64_t max_length) {
  return head_dim == kHeadDim && heads >= 1 && heads <= 65535 && max_length >= 0 &&
         max_length <= int64_t{kMaxQueryTiles} * kTile;
}

std::optional<bool> PackedAttentionRunsOn(int device) {
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  if (major < 8) return false;
  // A build with no code this device can run fails here (no kernel image).
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  cudaFuncAttributes attributes{};
  const bool has_image =
      cudaFuncGetAttributes(&attributes, PackedAttentionKernel<__half>) == cudaSuccess;
  (void)cudaGetLastError();
  (void)cudaSetDevice(current);
  return has_image;
}

int PackedAttention(HalfType type, const void* qkv, int64_t token_stride, const int32_t* starts,
                    int64_t rows, int64_t max_length, int64_t heads, int64_t head_dim, float scale,
                    void* out, void* stream) {
  if (!CanPackedAttention(heads, head_dim, max_length)) return -1;
  if (rows > 0x7fffffff) return -1;
  if (rows == 0 || max_length == 0) return 0;
  const dim3 grid(static_cast<unsigned>(rows),
                  static_cast<unsigned>((max_length + kTile - 1) / kTile),
                  static_cast<unsigned>(heads));
  const float scale_log2 = scale * 1.4426950408889634f;
  const int hidden = static_cast<int>(heads * head_dim);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (type == HalfType::kFloat16) {
    PackedAttentionKernel<__half><<<grid, kThreads, 0, s>>>(static_cast<const __half*>(qkv),
                                                            token_stride, hidden, starts,
                                                            scale_log2, static_cast<__half*>(out));
  } else {
    PackedAttentionKernel<__nv_bfloat16>
        <<<grid, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(qkv), token_stride, hidden,
                                   starts, scale_log2, static_cast<__nv_bfloat16*>(out));
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace modelpool::kernels
