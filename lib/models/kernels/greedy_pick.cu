#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "lib/models/kernels/greedy_pick.h"
#include "lib/models/kernels/overlapped_launch.cuh"

namespace modelpool::kernels {
namespace {

// Note [Greedy step in two kernels]
// After the decoder, a greedy step's bookkeeping as tensor operations is about 17 small
// kernels (n-gram bans, the minimum length, argmax, the sequence, lengths and end-of-sequence
// updates) and an argmax that gives one row of 50,265 scores to a single block (13 us on an
// H200, bart-large-cnn shape). Here it is two kernels:
// - Pick: blocks of 2048 scores of a row. Each first writes -inf over the banned ids that fall
//   in its share (only it reads them), then takes its best as one 64-bit key, the score's bits
//   made to order as unsigned integers above the complement of the id, so that the largest key
//   is the highest score and, among equal scores, the lowest id (argmax's choice). The blocks of
//   a row meet in one atomicMax, so the result does not depend on their order.
// - Finish: a thread a row reads the key, zeroes it for the next step, and writes the token,
//   the length and whether the row has ended.
// Measured (generate_profile and generate_bench, H200, bart-large-cnn shape, folder settings):
// kernels a generated position 180 to 164; one text 1,455 new tokens/s against 1,453 before (its
// step's time is in the decoder's graph), 32 texts greedy 27,581 against 27,160.

constexpr int kThreads = 256;
constexpr int kPerThread = 8;
constexpr int64_t kShare = int64_t{kThreads} * kPerThread;  // scores a block of Pick reads

// Orders floats as unsigned integers: negative below positive, -0 equal to +0, NaN above +inf
// (argmax takes NaN as the largest).
__device__ __forceinline__ uint64_t KeyOf(float score, int64_t id) {
  const unsigned bits = score == 0.f ? 0u : __float_as_uint(score);
  const unsigned ordered = score != score              ? 0xFFFFFFFFu
                           : (bits & 0x80000000u) != 0 ? ~bits
                                                       : bits | 0x80000000u;
  return (uint64_t{ordered} << 32) | (0xFFFFFFFFu - static_cast<unsigned>(id));
}

__device__ __forceinline__ uint64_t Larger(uint64_t a, uint64_t b) { return a > b ? a : b; }

__device__ __forceinline__ uint64_t WarpMax(uint64_t key) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    key = Larger(key, __shfl_xor_sync(0xFFFFFFFFu, key, offset));
  }
  return key;
}

__global__ void __launch_bounds__(kThreads) PickKernel(GreedyPickArgs a) {
  LetNextKernelStart();
  WaitForPrecedingKernel();
  const int64_t row = blockIdx.y;
  const int64_t first = blockIdx.x * kShare;
  const int64_t end = first + kShare < a.vocab ? first + kShare : a.vocab;
  float* scores = a.scores + row * a.vocab;
  const auto mine = [&](int64_t id) { return id >= first && id < end; };
  uint64_t best = 0;
  if (a.forced != nullptr) {
    // Every other id is -inf: the forced ids, all scored 0, decide alone.
    for (int64_t i = threadIdx.x; i < a.forced_count; i += kThreads) {
      if (mine(a.forced[i])) best = Larger(best, KeyOf(0.f, a.forced[i]));
    }
  } else {
    const int64_t* sequence = a.sequences + row * a.width;
    const int64_t n = a.no_repeat_ngram;
    if (n > 0 && a.length >= n) {
      // Window w bans the id after it where its first n - 1 ids are the sequence's last n - 1.
      for (int64_t w = threadIdx.x; w <= a.length - n; w += kThreads) {
        bool match = true;
        for (int64_t j = 0; j + 1 < n && match; ++j) {
          match = sequence[w + j] == sequence[a.length - n + 1 + j];
        }
        if (match && mine(sequence[w + n - 1])) {
          scores[sequence[w + n - 1]] = -INFINITY;
        }
      }
    }
    if (a.ban_eos) {
      for (int64_t i = threadIdx.x; i < a.eos_count; i += kThreads) {
        if (mine(a.eos[i])) scores[a.eos[i]] = -INFINITY;
      }
    }
    __syncthreads();  // the bans written before anyone of the block reads its scores
    float values[kPerThread];
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const int64_t id = first + u * kThreads + threadIdx.x;
      values[u] = id < end ? scores[id] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const int64_t id = first + u * kThreads + threadIdx.x;
      if (id < end) best = Larger(best, KeyOf(values[u], id));
    }
  }
  __shared__ uint64_t warps[kThreads / 32];
  best = WarpMax(best);
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x < 32) {
    best = WarpMax(threadIdx.x < kThreads / 32 ? warps[threadIdx.x] : 0);
    if (threadIdx.x == 0 && best != 0) {
      atomicMax(reinterpret_cast<unsigned long long*>(a.keys + row),
                static_cast<unsigned long long>(best));
    }
  }
}

__global__ void __launch_bounds__(kThreads) FinishKernel(GreedyPickArgs a) {
  LetNextKernelStart();
  WaitForPrecedingKernel();
  const int64_t row = int64_t{blockIdx.x} * kThreads + threadIdx.x;
  if (row >= a.rows) return;
  const uint64_t key = a.keys[row];
  a.keys[row] = 0;
  // No key: no forced id lies in the vocabulary (the options' checks rule that out); id 0.
  const int64_t token = key == 0 ? 0 : 0xFFFFFFFFu - static_cast<unsigned>(key & 0xFFFFFFFFu);
  const bool live = a.unfinished[row];
  const int64_t next = live ? token : a.pad;
  a.sequences[row * a.width + a.length] = next;
  if (!live) return;
  a.lengths[row] += 1;
  for (int64_t i = 0; i < a.eos_count; ++i) {
    if (a.eos[i] == next) a.unfinished[row] = false;
  }
}

}  // namespace

int GreedyPick(const GreedyPickArgs& a, void* stream, bool overlap) {
  constexpr int64_t kMostRows = 65535;  // a grid's y
  constexpr int64_t kMostIds = int64_t{1} << 31;
  if (a.rows < 1 || a.rows > kMostRows || a.vocab < 1 || a.vocab >= kMostIds || a.length < 1 ||
      a.length >= a.width || a.scores == nullptr || a.sequences == nullptr ||
      a.lengths == nullptr || a.unfinished == nullptr || a.keys == nullptr ||
      (a.eos_count > 0 && a.eos == nullptr) || a.eos_count < 0 || a.forced_count < 0 ||
      a.no_repeat_ngram < 0) {
    return -1;
  }
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const LaunchShape pick{
      dim3(static_cast<unsigned>((a.vocab + kShare - 1) / kShare), static_cast<unsigned>(a.rows)),
      dim3(kThreads)};
  if (const int error = LaunchKernel(PickKernel, pick, s, overlap, a); error != 0) return error;
  const LaunchShape finish{dim3(static_cast<unsigned>((a.rows + kThreads - 1) / kThreads)),
                           dim3(kThreads)};
  return LaunchKernel(FinishKernel, finish, s, overlap, a);
}

}  // namespace modelpool::kernels
