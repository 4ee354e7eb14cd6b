#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "lib/models/kernels/packed_attention.h"
#include "lib/models/kernels/tensor_cores.cuh"

namespace modelpool::kernels {
namespace {

// Note [Packed short-row attention]
// An embedding batch is many rows packed end to end, most of them short: in the bench corpus
// half the texts are under 80 tokens, and search queries or sentences are under 32. Flash
// attention takes each row in tiles of 128 queries by 128 keys (head size 64): a row of 16
// tokens costs as much as one of 128.
//
// Here a block takes 64 consecutive tokens of the packed batch as queries, for one head,
// whatever rows they belong to, 16 per warp, and walks the keys of those rows (one range of
// tokens, rows being contiguous) 64 at a time: the scores of its 16 queries and 64 keys on the
// tensor cores (mma m16n8k16), each score whose key is outside its query's row set to -inf,
// the softmax kept online in float32 (each query's running maximum and sum, in base 2 with the
// scale folded in), the probabilities rounded to the input type and multiplied by the values on
// the tensor cores again. A warp whose queries' rows have no key in a step skips it, and one
// whose queries are all in one row masks nothing in a step of keys all inside it (most steps
// of long rows; 6-14% of the kernel's time at 96 to 512 tokens, the same tiles before and after).
// The next keys and values are copied into shared memory (cp.async) while the current ones are
// used; those past the range are zeros, so neither stale shared memory nor tokens past the batch
// reach a result. The 16-byte chunks of shared memory rows are permuted (Swizzled) so that the 8
// rows one ldmatrix reads at one column fall in 8 different bank groups. Heads of 64 and of 32
// (MiniLM) are two instances of one template.
//
// Measured on rows of one length (benchmarks/attention_bench.cc, H200, float16, 16,384 tokens a
// call), 16 heads of 64: 41.5-42.1 us a call for rows of 8, 16, 32 and 64 tokens, about 3.2
// TB/s of projections read and context written, against flash attention's 731 us at 8 tokens
// and 102 us at 64; 54-68 us against 64-114 us for rows of 96 to 192; from 256 tokens on,
// flash attention is as fast or faster (163.9 against 147.4 us at 512) except where a row
// takes a tile of keys more than it needs (126.5 against 159.4 at 260), and the BERT encoder
// calls it for batches over 192 tokens. 12 heads of 32: 22.6-24.3 us at 8, 16, 32 and 64 against
// 64-442, and faster than flash attention at every length up to 512 (80.0 against 83.9 us).
// A first version, one row a block with its tiles aligned to the row's start, took 102 us at
// 16 tokens and 161 at 512. Tiles of whole rows planned on the host (as many short rows as fit
// in 64 tokens, long rows from their start) were 0-8% slower from 96 tokens on, faster only
// at 48 (45.9 against 53.1 us), and 0.3% faster end to end on bert-large: not worth a plan.

constexpr int kTile = 64;  // queries a block; keys a step
constexpr int kWarps = kTile / 16;
constexpr int kThreads = 32 * kWarps;
// Blocks an SM holds at once: at most 128 registers a thread (3 blocks of 152 registers were
// about 1% slower on bert-large's embeddings).
constexpr int kBlocksPerSm = 4;

// Where 16-byte chunk `chunk` of row `row` of a tile lies: rows of kHeadDim elements, the
// chunks of each 128 bytes permuted so that one column of 8 consecutive rows (what ldmatrix
// reads at once) falls in 8 different bank groups. Rows of 64 elements fill 128 bytes: chunk
// ^ row; rows of 32 take two to 128 bytes: chunk ^ (row / 2), the row's parity picking the
// half.
template <int kHeadDim>
__device__ __forceinline__ uint32_t Swizzled(int row, int chunk) {
  constexpr int kChunks = kHeadDim / 8;
  constexpr int kRowsPerLine = kChunks >= 8 ? 1 : 8 / kChunks;
  constexpr int kMask = (kChunks >= 8 ? 8 : kChunks) - 1;
  return static_cast<uint32_t>(row * (kHeadDim * 2) +
                               ((chunk ^ ((row / kRowsPerLine) & kMask)) * 16));
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

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    PackedAttentionKernel(const T* __restrict__ qkv, int64_t token_stride, int hidden,
                          const int32_t* __restrict__ starts, const int32_t* __restrict__ row_ids,
                          int tokens, float scale_log2, T* __restrict__ out) {
  constexpr int kChunks = kHeadDim / 8;             // 16-byte chunks of a row
  constexpr int kTileBytes = kTile * kHeadDim * 2;  // one tile of queries, keys or values
  constexpr int kSharedBytes = 5 * kTileBytes;      // queries, then keys and values twice
  const int head = blockIdx.y;
  const int first_query = blockIdx.x * kTile;
  const int last_query = min(first_query + kTile, tokens) - 1;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // The keys of every row the block's queries are in: rows are contiguous, so one range.
  const int block_begin = starts[row_ids[first_query]];
  const int block_end = starts[row_ids[last_query] + 1];
  // The same for the warp's 16 queries (none where they are all past the last token), and for
  // this lane's two, lane / 4 and lane / 4 + 8 of them.
  const int warp_first = first_query + warp * 16;
  const bool warp_has_queries = warp_first <= last_query;
  const int warp_begin = warp_has_queries ? starts[row_ids[warp_first]] : 0;
  const int warp_last_row = warp_has_queries ? row_ids[min(warp_first + 15, last_query)] : 0;
  const int warp_end = warp_has_queries ? starts[warp_last_row + 1] : 0;
  // Whether the warp's queries are all in one row: then a step of keys all inside that row
  // needs no mask (most steps of long rows).
  const bool warp_one_row = warp_has_queries && row_ids[warp_first] == warp_last_row;
  int query_begin[2], query_end[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int query = warp_first + lane / 4 + 8 * half;
    const int row = query <= last_query ? row_ids[query] : -1;
    query_begin[half] = row >= 0 ? starts[row] : 0;
    query_end[half] = row >= 0 ? starts[row + 1] : 0;
  }

  __shared__ __align__(128) uint8_t shared[kSharedBytes];
  const uint32_t queries = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  const auto keys = [&](int buffer) { return queries + (1 + buffer) * kTileBytes; };
  const auto values = [&](int buffer) { return queries + (3 + buffer) * kTileBytes; };
  const T* base = qkv + head * kHeadDim;
  // Tokens first ... first + 63 (those before `end`), part 0 (queries), 1 (keys) or 2 (values).
  const auto load = [&](uint32_t tile, int part, int first, int end) {
#pragma unroll
    for (int i = 0; i < kTile * kChunks / kThreads; ++i) {
      const int index = static_cast<int>(threadIdx.x) + i * kThreads;
      const int r = index / kChunks, chunk = index % kChunks;
      const bool valid = first + r < end;
      const T* source = valid ? base + (first + r) * token_stride + part * hidden + chunk * 8 : qkv;
      CopyAsync(tile + Swizzled<kHeadDim>(r, chunk), source, valid);
    }
  };
  load(queries, 0, first_query, last_query + 1);
  load(keys(0), 1, block_begin, block_end);
  load(values(0), 2, block_begin, block_end);
  CommitCopies();

  float o[kHeadDim / 8][4] = {};  // outputs, 8 dimensions each, unnormalized
  // The lane's two queries' running maximum of the scores (unscaled; -inf until a key of
  // their row is seen) and sum of exp2(scale_log2 * (score - maximum)).
  float maximum[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
  const int key_tiles = (block_end - block_begin + kTile - 1) / kTile;
  for (int tile = 0; tile < key_tiles; ++tile) {
    const int buffer = tile & 1;
    const int tile_begin = block_begin + tile * kTile;
    if (tile + 1 < key_tiles) {
      load(keys(buffer ^ 1), 1, tile_begin + kTile, block_end);
      load(values(buffer ^ 1), 2, tile_begin + kTile, block_end);
    }
    CommitCopies();  // possibly empty: the wait below then always leaves the newest group
    WaitCopiesButOne();
    __syncthreads();
    // A warp whose rows have no key here skips the step (it still copies and waits).
    if (warp_has_queries && tile_begin < warp_end && tile_begin + kTile > warp_begin) {
      // Scores: s[n] holds keys 8n ... 8n + 7 of this tile (C fragments). The queries' A
      // fragments are read again each step rather than held: the registers they would take
      // would cost the fourth block on each SM.
      float s[kTile / 8][4] = {};
#pragma unroll
      for (int k = 0; k < kHeadDim / 16; ++k) {
        uint32_t q[4];
        LoadMatrices(queries + Swizzled<kHeadDim>(warp * 16 + lane % 16, 2 * k + lane / 16), q);
#pragma unroll
        for (int n = 0; n < kTile / 16; ++n) {
          uint32_t b[4];
          LoadMatrices(keys(buffer) + Swizzled<kHeadDim>(16 * n + lane % 8 + (lane / 16) * 8,
                                                         2 * k + (lane / 8) % 2),
                       b);
          Mma<T>(s[2 * n], q[0], q[1], q[2], q[3], b[0], b[1]);
          Mma<T>(s[2 * n + 1], q[0], q[1], q[2], q[3], b[2], b[3]);
        }
      }
      // Only the keys of each query's own row count.
      if (!warp_one_row || tile_begin < warp_begin || tile_begin + kTile > warp_end) {
#pragma unroll
        for (int n = 0; n < kTile / 8; ++n) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int key = tile_begin + 8 * n + 2 * (lane % 4) + j % 2;
            if (key < query_begin[j / 2] || key >= query_end[j / 2]) s[n][j] = -INFINITY;
          }
        }
      }
      // The online softmax. A query none of whose keys has been seen keeps a maximum of -inf,
      // and its probabilities come out 0.
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
        const float finite = new_maximum == -INFINITY ? 0.f : new_maximum;
        const float rescale = exp2f((maximum[half] - finite) * scale_log2);
        maximum[half] = new_maximum;
        sum[half] *= rescale;
#pragma unroll
        for (int d = 0; d < kHeadDim / 8; ++d) {
          o[d][2 * half] *= rescale;
          o[d][2 * half + 1] *= rescale;
        }
        const float offset = finite * scale_log2;
#pragma unroll
        for (int n = 0; n < kTile / 8; ++n) {
#pragma unroll
          for (int j = 2 * half; j < 2 * half + 2; ++j) {
            s[n][j] = exp2f(fmaf(s[n][j], scale_log2, -offset));
            sum[half] += s[n][j];
          }
        }
      }
      // Outputs += probabilities · values: keys 16j ... 16j + 15 are the A fragment of the
      // scores' C fragments 2j and 2j + 1.
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
              values(buffer) +
                  Swizzled<kHeadDim>(16 * j + lane % 8 + ((lane / 8) % 2) * 8, 2 * d + lane / 16),
              b);
          Mma<T>(o[2 * d], a0, a1, a2, a3, b[0], b[1]);
          Mma<T>(o[2 * d + 1], a0, a1, a2, a3, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // before the next step's copies overwrite the other buffers
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float total = sum[half];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const int query = warp_first + lane / 4 + 8 * half;
    if (query > last_query) continue;
    const float inverse = 1.f / total;
    T* destination = out + static_cast<int64_t>(query) * hidden + head * kHeadDim + 2 * (lane % 4);
#pragma unroll
    for (int d = 0; d < kHeadDim / 8; ++d) {
      *reinterpret_cast<uint32_t*>(destination + 8 * d) =
          PackPair<T>(o[d][2 * half] * inverse, o[d][2 * half + 1] * inverse);
    }
  }
}

}  // namespace

bool CanPackedAttention(int64_t heads, int64_t head_dim) {
  return (head_dim == 32 || head_dim == 64) && heads >= 1 && heads <= 65535;
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
  // One instance answers for all four: they are built for the same architectures.
  cudaFuncAttributes attributes{};
  const cudaError_t error = cudaFuncGetAttributes(&attributes, PackedAttentionKernel<__half, 64>);
  (void)cudaGetLastError();
  (void)cudaSetDevice(current);
  if (error == cudaSuccess) return true;
  // Anything else (memory while loading the module, say) is not an answer to remember.
  if (error == cudaErrorNoKernelImageForDevice || error == cudaErrorInvalidDeviceFunction) {
    return false;
  }
  return std::nullopt;
}

int PackedAttention(HalfType type, const void* qkv, int64_t token_stride, const int32_t* starts,
                    const int32_t* row_ids, int64_t tokens, int64_t heads, int64_t head_dim,
                    float scale, void* out, void* stream) {
  // Token indexes plus a tile stay within int32; masked scores are -inf before scaling, so
  // the scale must keep their order and stay finite.
  if (!CanPackedAttention(heads, head_dim) || tokens < 0 || tokens > 0x7fffffff - kTile ||
      !(scale > 0.f) || !std::isfinite(scale)) {
    return -1;
  }
  if (tokens == 0) return 0;
  const dim3 grid(static_cast<unsigned>((tokens + kTile - 1) / kTile),
                  static_cast<unsigned>(heads));
  const int count = static_cast<int>(tokens);
  const float scale_log2 = scale * 1.4426950408889634f;
  const int hidden = static_cast<int>(heads * head_dim);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const auto launch = [&](auto kernel, auto* typed) {
    using Element = std::remove_const_t<std::remove_pointer_t<decltype(typed)>>;
    kernel<<<grid, kThreads, 0, s>>>(static_cast<const Element*>(qkv), token_stride, hidden, starts,
                                     row_ids, count, scale_log2, static_cast<Element*>(out));
  };
  if (type == HalfType::kFloat16) {
    head_dim == 64 ? launch(PackedAttentionKernel<__half, 64>, static_cast<__half*>(nullptr))
                   : launch(PackedAttentionKernel<__half, 32>, static_cast<__half*>(nullptr));
  } else {
    using Bf16 = __nv_bfloat16;
    head_dim == 64 ? launch(PackedAttentionKernel<Bf16, 64>, static_cast<Bf16*>(nullptr))
                   : launch(PackedAttentionKernel<Bf16, 32>, static_cast<Bf16*>(nullptr));
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace modelpool::kernels
