#include <cuda_runtime.h>

#include <algorithm>

#include "lib/models/kernels/copy_chunks.h"

namespace modelpool::kernels {
namespace {

// Note [Chunk copies]
// A beam reorder moves, in every layer's keys and values, each row's first `length` positions
// of every head (one contiguous chunk of length * head_dim elements) to another row. ATen does
// it as an index_select over a strided view (its generic gather kernel, one element a thread
// with index arithmetic in every dimension) and a copy back into the strided view (its
// non-vectorized copy kernel): about 0.6 TB/s on an H200, a sixth of a step. Here one block
// moves the chunks of one row of one group in 16-byte vectors, the row's place worked out once;
// its threads take the row's vectors in turn, so that short chunks (early positions) still
// keep them busy.
constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    CopyChunksKernel(const int4* src, ChunkStrides from, int4* dst, ChunkStrides to,
                     const int64_t* rows_from, int64_t rows, int chunks, int vectors_per_chunk) {
  const int64_t r = blockIdx.x % rows;
  const int64_t g = blockIdx.x / rows;
  const int64_t source_row = rows_from == nullptr ? r : rows_from[r];
  const int4* in = src + g * from.group + source_row * from.row;
  int4* out = dst + g * to.group + r * to.row;
  const int total = chunks * vectors_per_chunk;
  for (int i = threadIdx.x; i < total; i += kThreads) {
    const int c = i / vectors_per_chunk;
    const int v = i - c * vectors_per_chunk;
    out[c * to.chunk + v] = in[c * from.chunk + v];
  }
}

bool Aligned(int64_t bytes) { return bytes % 16 == 0; }

}  // namespace

int CopyChunks(const void* src, ChunkStrides from, void* dst, ChunkStrides to,
               const int64_t* rows_from, int64_t groups, int64_t rows, int64_t chunks,
               int64_t chunk_bytes, void* stream) {
  const bool aligned = Aligned(reinterpret_cast<uintptr_t>(src)) &&
                       Aligned(reinterpret_cast<uintptr_t>(dst)) && Aligned(chunk_bytes) &&
                       Aligned(from.group) && Aligned(from.row) && Aligned(from.chunk) &&
                       Aligned(to.group) && Aligned(to.row) && Aligned(to.chunk);
  if (!aligned) return -1;
  const int64_t blocks = groups * rows;
  const int64_t vectors_per_chunk = chunk_bytes / 16;
  if (blocks == 0 || chunks == 0 || vectors_per_chunk == 0) return 0;
  if (blocks > 0x7fffffff || chunks * vectors_per_chunk > 0x7fffffff) return -1;
  auto vectors = [](ChunkStrides s) {
    return ChunkStrides{s.group / 16, s.row / 16, s.chunk / 16};
  };
  CopyChunksKernel<<<static_cast<unsigned>(blocks), kThreads, 0,
                     static_cast<cudaStream_t>(stream)>>>(
      static_cast<const int4*>(src), vectors(from), static_cast<int4*>(dst), vectors(to), rows_from,
      rows, static_cast<int>(chunks), static_cast<int>(vectors_per_chunk));
  return static_cast<int>(cudaGetLastError());
}

}  // namespace modelpool::kernels
