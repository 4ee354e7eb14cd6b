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
// non-vectorized copy kernel): about 0.6 TB/s on an H200, a sixth of a step. Here each thread
// moves 16-byte vectors of whole chunks, whose place it derives from one flat index.
__global__ void CopyChunksKernel(const int4* src, ChunkStrides from, int4* dst, ChunkStrides to,
                                 const int64_t* rows_from, int64_t rows, int64_t chunks,
                                 int64_t vectors_per_chunk, int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t v = i % vectors_per_chunk;
    const int64_t chunk_index = i / vectors_per_chunk;
    const int64_t c = chunk_index % chunks;
    const int64_t r = (chunk_index / chunks) % rows;
    const int64_t g = chunk_index / (chunks * rows);
    const int64_t source_row = rows_from == nullptr ? r : rows_from[r];
    dst[g * to.group + r * to.row + c * to.chunk + v] =
        src[g * from.group + source_row * from.row + c * from.chunk + v];
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
  const int64_t total = groups * rows * chunks * (chunk_bytes / 16);
  if (total == 0) return 0;
  auto vectors = [](ChunkStrides s) {
    return ChunkStrides{s.group / 16, s.row / 16, s.chunk / 16};
  };
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, 65536);
  CopyChunksKernel<<<static_cast<unsigned>(blocks), kThreads, 0,
                     static_cast<cudaStream_t>(stream)>>>(
      static_cast<const int4*>(src), vectors(from), static_cast<int4*>(dst), vectors(to), rows_from,
      rows, chunks, chunk_bytes / 16, total);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace modelpool::kernels
