#ifndef MODELPOOL_LIB_MODELS_KERNELS_COPY_CHUNKS_H_
#define MODELPOOL_LIB_MODELS_KERNELS_COPY_CHUNKS_H_

#include <cstdint>

// Plain CUDA, no libtorch, as residual_layer_norm.h.

namespace modelpool::kernels {

// Byte strides of a three-level layout: groups of rows of chunks.
struct ChunkStrides {
  int64_t group;
  int64_t row;
  int64_t chunk;
};

// CopyChunks()
//
// For every group g < groups, row r < rows and chunk c < chunks, copies `chunk_bytes` bytes
// from src + g * from.group + rows_from[r] * from.row + c * from.chunk to dst + g * to.group +
// r * to.row + c * to.chunk. `rows_from` (int64 [rows], on the device) may be null: row r from
// row r. The source and destination must not overlap. Returns -1, launching nothing, unless both
// pointers, every stride and `chunk_bytes` are multiples of 16 bytes (and groups * rows and a
// row's vectors below 2^31); otherwise the launch's
// cudaError_t as an int (0: launched).
int CopyChunks(const void* src, ChunkStrides from, void* dst, ChunkStrides to,
               const int64_t* rows_from, int64_t groups, int64_t rows, int64_t chunks,
               int64_t chunk_bytes, void* stream);

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_COPY_CHUNKS_H_
