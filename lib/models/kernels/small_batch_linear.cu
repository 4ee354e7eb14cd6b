#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>

#include "lib/models/kernels/half_types.cuh"
#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/small_batch_linear.h"
#include "lib/models/kernels/tensor_cores.cuh"

namespace modelpool::kernels {
namespace {

namespace cg = cooperative_groups;

// Note [Small-batch linear]
// A decoding step of a few texts multiplies a few rows by each weight matrix: the work is
// reading the weights once. For one row, cuBLAS takes 7.3 us for a 1024 x 1024 matrix (a
// 2 MB read: 0.29 TB/s on an H200), the shape of t5-large's and bart-large's attention
// outputs and cross-attention queries.
//
// Here a block owns 64 output features and a slice of the inputs; the blocks of one cluster
// (Hopper's thread block clusters) take the slices of the same features, so a matrix of 1024
// outputs still spreads over 128 SMs. A block stages its slice of the activations in shared
// memory once, and each of its 4 warps streams the weights of 16 features through the tensor
// cores (mma m16n8k16: features are the instruction's rows, the step's rows its columns). A
// lane loads 8 consecutive inputs of a weight row as one 16-byte vector and the same 8 inputs
// of an activation row, and both operands give those 8 inputs the same positions of the
// instruction's k dimension: a dot product does not depend on the order of its terms, so the
// weights go from memory to the tensor cores untouched. A warp's next weight loads are issued
// before it multiplies the current ones. The blocks of a cluster then add their partial sums
// through distributed shared memory, each block a share of the outputs, always in rank order,
// so a call's result does not depend on timing; the bias rides along.
//
// Measured (benchmarks/linear_bench.cc, H200, calls replayed from a CUDA graph), for one row:
// 3.4 us against cuBLAS's 7.3 for 1024 x 1024, 4.8 against 6.1 for 4096 inputs to 1024; with
// more outputs than inputs cuBLAS is a little faster (3.9 against 3.6 us for 1024 to 3072),
// and from 32 rows on it is faster for every shape (3.6 to 6.4 us against 5 to 10): there
// both sit near the floor that a launch and its first loads set, and the staging and the
// cluster's reduction cost more than cuBLAS's small tiles lose. Decoders therefore call the
// kernel for at most 8 rows and no more outputs than inputs, and for one row with up to 4
// times as many (SmallBatchLinearWhereFaster): alone, one row of 1024 to 3072 or 4096 takes
// about as long as cuBLAS (3.4 against 3.6 us, 4.0 against 3.8), but in a decoder step it
// starts while the kernel before it finishes (Note [Overlapped launches]) and applies the
// feed-forward's GELU or ReLU itself: one text of a bart-large-cnn shape went from 1,480-1,504
// to 1,548-1,562 new tokens/s, t5-large from 816 to 869-892 (generate_bench, H200, the
// self-attention projections and the first feed-forward layer on cuBLAS, then on this kernel).
// A first version (16 features a block over all the inputs, no clusters, activations loaded
// by each warp) was slower still with 32 rows: 53.8 ms of t5-large's batch against 46.5 ms.

constexpr int kWarps = 4;
constexpr int kFeaturesPerWarp = 16;
constexpr int kFeaturesPerBlock = kWarps * kFeaturesPerWarp;
constexpr int kChunk = 32;                   // inputs a warp multiplies at a time: 16 bytes a lane
constexpr int kMaxSplits = 8;                // blocks a cluster (the portable limit)
[[maybe_unused]] constexpr int kUnroll = 4;  // chunks of weights loaded ahead
constexpr int kMaxShared = 160 * 1024;

__device__ __forceinline__ float Activate(float x, SmallBatchActivation activation) {
  switch (activation) {
    case SmallBatchActivation::kGelu:
      return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case SmallBatchActivation::kGeluTanh:
      return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case SmallBatchActivation::kRelu:
      return fmaxf(x, 0.f);
    default:
      return x;
  }
}

// How a call lays out its blocks and shared memory.
struct Plan {
  int splits;  // blocks of a cluster, each `slice` inputs
  int slice;
  int stride;  // elements between staged activation rows: 64 bytes past a multiple of 128, so
               // the two rows that each 8 lanes of a 16-byte load read cover all 32 banks
  int shared;  // bytes: staged activations, then the partial sums [rows][64] in float32
};

Plan PlanFor(int tiles, int64_t in) {
  Plan plan{};
  plan.splits = kMaxSplits;
  while (plan.splits > 1 && in % (int64_t{kChunk} * plan.splits) != 0) plan.splits /= 2;
  const int64_t slice = in / plan.splits;
  const int64_t bytes = slice * 2;
  plan.slice = static_cast<int>(slice);
  plan.stride = static_cast<int>((bytes + (64 - bytes % 128 + 128) % 128) / 2);
  const int64_t shared = int64_t{tiles} * 8 * (plan.stride * 2 + kFeaturesPerBlock * 4);
  plan.shared = shared > kMaxShared ? -1 : static_cast<int>(shared);
  return plan;
}

int TilesFor(int64_t rows) { return rows <= 8 ? 1 : rows <= 16 ? 2 : rows <= 32 ? 4 : 8; }

// kTiles groups of 8 rows (rows past `rows` read as zeros).
template <typename T, int kTiles>
__global__ void __launch_bounds__(32 * kWarps)
    SmallBatchLinearKernel(const T* __restrict__ x, const T* __restrict__ weight,
                           const T* __restrict__ bias, T* __restrict__ y, int rows, int in, int out,
                           int slice, int stride, SmallBatchActivation activation) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  // Clusters need Hopper; SmallBatchLinear's callers check the device before they launch.
#else
  LetNextKernelStart();
  extern __shared__ __align__(16) unsigned char shared[];
  T* staged = reinterpret_cast<T*>(shared);  // [kTiles * 8][stride]
  float* partials = reinterpret_cast<float*>(shared + kTiles * 8 * stride * sizeof(T));
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int splits = static_cast<int>(cluster.num_blocks());
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group = lane / 4;  // the mma's row (feature) and column (step row) within 8
  const int quad = lane % 4;   // which 8 inputs of a chunk the lane loads
  const int feature0 = blockIdx.x * kFeaturesPerBlock + warp * kFeaturesPerWarp;
  const int first_input = rank * slice;
  const int chunks = slice / kChunk;

  // Chunk c of the slice: the lane's 16-byte vector 4c + quad of its two weight rows.
  const uint4* w_low =
      reinterpret_cast<const uint4*>(weight + int64_t{feature0 + group} * in + first_input) + quad;
  const uint4* w_high = w_low + in;  // 8 rows further: 8 * in elements, in vectors
  uint4 current[kUnroll][2];
  uint4 next[kUnroll][2];
  const auto load = [&](uint4(&to)[kUnroll][2], int first) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (first + u < chunks) {
        to[u][0] = __ldcs(w_low + (first + u) * 4);
        to[u][1] = __ldcs(w_high + (first + u) * 4);
      } else {
        to[u][0] = to[u][1] = make_uint4(0, 0, 0, 0);
      }
    }
  };
  load(current, 0);  // weights: nothing in flight writes them (Note [Overlapped launches])
  WaitForPrecedingKernel();

  // The block's activations, rows past `rows` zero, while the first weights are on their way.
  const int vectors = slice / 8;
  for (int i = threadIdx.x; i < kTiles * 8 * vectors; i += 32 * kWarps) {
    const int row = i / vectors;
    const int v = i % vectors;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (row < rows) {
      value = __ldg(reinterpret_cast<const uint4*>(x + int64_t{row} * in + first_input) + v);
    }
    reinterpret_cast<uint4*>(staged + row * stride)[v] = value;
  }
  __syncthreads();

  float acc[kTiles][4] = {};
  for (int first = 0; first < chunks; first += kUnroll) {
    load(next, first + kUnroll);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (first + u < chunks) {
        const uint4 low = current[u][0];
        const uint4 high = current[u][1];
        const int column = (first + u) * kChunk + quad * 8;
#pragma unroll
        for (int tile = 0; tile < kTiles; ++tile) {
          const uint4 b =
              *reinterpret_cast<const uint4*>(staged + (tile * 8 + group) * stride + column);
          // Inputs 8q..8q+3 take the first instruction's k positions 2q, 2q+1, 2q+8, 2q+9;
          // inputs 8q+4..8q+7 the second's.
          Mma<T>(acc[tile], low.x, high.x, low.y, high.y, b.x, b.y);
          Mma<T>(acc[tile], low.z, high.z, low.w, high.w, b.z, b.w);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      current[u][0] = next[u][0];
      current[u][1] = next[u][1];
    }
  }

  // acc[tile] holds features (group, group + 8) of the warp for rows tile * 8 + 2 * quad (+1).
  const int f = warp * kFeaturesPerWarp + group;
#pragma unroll
  for (int tile = 0; tile < kTiles; ++tile) {
    const int row = tile * 8 + 2 * quad;
    partials[row * kFeaturesPerBlock + f] = acc[tile][0];
    partials[(row + 1) * kFeaturesPerBlock + f] = acc[tile][1];
    partials[row * kFeaturesPerBlock + f + 8] = acc[tile][2];
    partials[(row + 1) * kFeaturesPerBlock + f + 8] = acc[tile][3];
  }
  cluster.sync();  // every block's partial sums written, and visible across the cluster
  const int outputs = rows * kFeaturesPerBlock;
  const int share = (outputs + splits - 1) / splits;
  const int end = min(outputs, (rank + 1) * share);
  for (int o = rank * share + static_cast<int>(threadIdx.x); o < end; o += 32 * kWarps) {
    float sum = 0.f;
    for (int r = 0; r < splits; ++r) sum += cluster.map_shared_rank(partials, r)[o];
    const int feature = blockIdx.x * kFeaturesPerBlock + o % kFeaturesPerBlock;
    if (bias != nullptr) sum += ToFloat(bias[feature]);
    sum = Activate(sum, activation);
    y[int64_t{o / kFeaturesPerBlock} * out + feature] = FromFloat<T>(sum);
  }
  cluster.sync();  // no block leaves while another reads its shared memory
#endif
}

template <typename T, int kTiles>
int Launch(const void* x, const void* weight, const void* bias, void* y, int rows, int in, int out,
           SmallBatchActivation activation, cudaStream_t stream, bool overlap) {
  const Plan plan = PlanFor(kTiles, in);
  if (plan.shared < 0) return -1;
  const auto kernel = SmallBatchLinearKernel<T, kTiles>;
  if (plan.shared > 48 * 1024) {
    // The same value from every thread: the attribute is the process's, shared by workers.
    const cudaError_t error =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxShared);
    if (error != cudaSuccess) {
      (void)cudaGetLastError();  // not left for the next launch check to report
      return static_cast<int>(error);
    }
  }
  const LaunchShape shape{
      dim3(static_cast<unsigned>(out / kFeaturesPerBlock), static_cast<unsigned>(plan.splits), 1),
      dim3(32 * kWarps, 1, 1), static_cast<size_t>(plan.shared),
      static_cast<unsigned>(plan.splits)};
  return LaunchKernel(kernel, shape, stream, overlap, static_cast<const T*>(x),
                      static_cast<const T*>(weight), static_cast<const T*>(bias),
                      static_cast<T*>(y), rows, in, out, plan.slice, plan.stride, activation);
}

template <typename T>
int LaunchFor(const void* x, const void* weight, const void* bias, void* y, int rows, int in,
              int out, SmallBatchActivation activation, cudaStream_t stream, bool overlap) {
  switch (TilesFor(rows)) {
    case 1:
      return Launch<T, 1>(x, weight, bias, y, rows, in, out, activation, stream, overlap);
    case 2:
      return Launch<T, 2>(x, weight, bias, y, rows, in, out, activation, stream, overlap);
    case 4:
      return Launch<T, 4>(x, weight, bias, y, rows, in, out, activation, stream, overlap);
    default:
      return Launch<T, 8>(x, weight, bias, y, rows, in, out, activation, stream, overlap);
  }
}

}  // namespace

bool CanSmallBatchLinear(int64_t rows, int64_t in, int64_t out) {
  // Keeps the kernel's int indices (inputs, outputs, rows * 64 partial sums) in range.
  constexpr int64_t kLargest = int64_t{1} << 30;
  return rows >= 1 && rows <= kSmallBatchMaxRows && in > 0 && in % kChunk == 0 && in <= kLargest &&
         out > 0 && out % kFeaturesPerBlock == 0 && out <= kLargest / kSmallBatchMaxRows &&
         PlanFor(TilesFor(rows), in).shared >= 0;
}

std::optional<bool> SmallBatchLinearRunsOn(int device) {
  int major = 0, optin = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  // Built from PTX older than compute_90 (MODELPOOL_CUDA_ARCHITECTURES without 90), the kernel
  // is empty: clusters need Hopper.
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, SmallBatchLinearKernel<__nv_bfloat16, 1>) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  return major >= 9 && optin >= kMaxShared && attributes.ptxVersion >= 90;
}

int SmallBatchLinear(HalfType type, const void* x, const void* weight, const void* bias, void* y,
                     int64_t rows, int64_t in, int64_t out, void* stream, bool overlap,
                     SmallBatchActivation activation) {
  if (!CanSmallBatchLinear(rows, in, out)) return -1;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int r = static_cast<int>(rows), i = static_cast<int>(in), o = static_cast<int>(out);
  return type == HalfType::kFloat16
             ? LaunchFor<__half>(x, weight, bias, y, r, i, o, activation, s, overlap)
             : LaunchFor<__nv_bfloat16>(x, weight, bias, y, r, i, o, activation, s, overlap);
}

}  // namespace modelpool::kernels
