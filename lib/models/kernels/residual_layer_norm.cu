#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "lib/models/kernels/half_types.cuh"
#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/residual_layer_norm.h"
#include "lib/models/kernels/warp_reduce.cuh"

namespace modelpool::kernels {
namespace {

// Note [Residual LayerNorm kernel]
// BERT's post-norm blocks compute LayerNorm(linear(h) + x): with ATen that is an add (read
// two tensors, write one) and a LayerNorm (read one, write one). Here one warp takes one row:
// each lane loads kVectors 16-byte vectors of each input (8 halves each), keeps the sum in
// float32 registers, reduces mean and variance with shuffles (two passes over the registers,
// no second read of memory), and writes the normalized row once: two reads and one write in
// all. Rows up to 32 lanes x 8 x kVectors elements; the launcher picks the smallest kVectors.

constexpr int kWarpsPerBlock = 4;

template <typename T, int kVectors>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    ResidualLayerNormKernel(const T* __restrict__ x, const T* __restrict__ residual,
                            const T* __restrict__ weight, const T* __restrict__ bias, T* out,
                            int64_t rows, int width, float eps) {
  LetNextKernelStart();
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int vectors = width / 8;
  const Vec8<T>* x_row = reinterpret_cast<const Vec8<T>*>(x + row * width);
  const Vec8<T>* r_row = reinterpret_cast<const Vec8<T>*>(residual + row * width);
  const Vec8<T>* w_row = reinterpret_cast<const Vec8<T>*>(weight);
  const Vec8<T>* b_row = reinterpret_cast<const Vec8<T>*>(bias);
  // Rows of up to 2048 load the weight and bias before the row, not after the reductions: one
  // round trip to memory, not two, in a kernel of a few microseconds, and before the wait for
  // the kernel before (Note [Overlapped launches]). (Wider rows would spill.)
  constexpr bool kEarly = kVectors <= 8;
  Vec8<T> wv[kVectors], bv[kVectors];
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    if (kEarly && lane + 32 * i < vectors)
      wv[i] = w_row[lane + 32 * i], bv[i] = b_row[lane + 32 * i];
  }
  WaitForPrecedingKernel();
  float values[kVectors][8];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int v = lane + 32 * i;
    if (v < vectors) {
      const Vec8<T> a = x_row[v];
      const Vec8<T> b = r_row[v];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        values[i][j] = ToFloat(a.v[j]) + ToFloat(b.v[j]);
        sum += values[i][j];
      }
    }
  }
  const float mean = WarpSum(sum) / width;
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    if (lane + 32 * i < vectors) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float d = values[i][j] - mean;
        squares += d * d;
      }
    }
  }
  const float inv_std = rsqrtf(WarpSum(squares) / width + eps);
  Vec8<T>* o_row = reinterpret_cast<Vec8<T>*>(out + row * width);
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int v = lane + 32 * i;
    if (v < vectors) {
      const Vec8<T> wi = kEarly ? wv[i] : w_row[v];
      const Vec8<T> bi = kEarly ? bv[i] : b_row[v];
      Vec8<T> result;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        result.v[j] =
            FromFloat<T>((values[i][j] - mean) * inv_std * ToFloat(wi.v[j]) + ToFloat(bi.v[j]));
      }
      o_row[v] = result;
    }
  }
}

// Note [Residual RMSNorm kernel]
// T5's blocks add each sublayer's output to the residual stream and normalize the sum for the
// next sublayer: h = h + y; x = weight * RMSNorm(h). As the LayerNorm kernel, one warp a row:
// the sum is rounded to the storage type and written (it is the next residual), its mean
// square taken in float32, and the output rounded twice, after the normalization and after the
// weight, as transformers' T5LayerNorm rounds in half precision.
template <typename T, int kVectors>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    ResidualRmsNormKernel(const T* x, const T* residual, const T* __restrict__ weight, T* sum_out,
                          T* __restrict__ out, int64_t rows, int width, float eps) {
  LetNextKernelStart();
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int vectors = width / 8;
  const Vec8<T>* x_row = reinterpret_cast<const Vec8<T>*>(x + row * width);
  const Vec8<T>* r_row = reinterpret_cast<const Vec8<T>*>(residual + row * width);
  Vec8<T>* s_row = reinterpret_cast<Vec8<T>*>(sum_out + row * width);
  const Vec8<T>* w_row = reinterpret_cast<const Vec8<T>*>(weight);
  constexpr bool kEarly = kVectors <= 8;  // the weight loaded first, as for LayerNorm
  Vec8<T> wv[kVectors];
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    if (kEarly && lane + 32 * i < vectors) wv[i] = w_row[lane + 32 * i];
  }
  WaitForPrecedingKernel();
  float values[kVectors][8];
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int v = lane + 32 * i;
    if (v < vectors) {
      const Vec8<T> a = x_row[v];
      const Vec8<T> b = r_row[v];
      Vec8<T> rounded;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        rounded.v[j] = FromFloat<T>(ToFloat(a.v[j]) + ToFloat(b.v[j]));
        values[i][j] = ToFloat(rounded.v[j]);
        squares += values[i][j] * values[i][j];
      }
      s_row[v] = rounded;
    }
  }
  const float inv_rms = rsqrtf(WarpSum(squares) / width + eps);
  Vec8<T>* o_row = reinterpret_cast<Vec8<T>*>(out + row * width);
#pragma unroll
  for (int i = 0; i < kVectors; ++i) {
    const int v = lane + 32 * i;
    if (v < vectors) {
      const Vec8<T> wi = kEarly ? wv[i] : w_row[v];
      Vec8<T> result;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float normalized = ToFloat(FromFloat<T>(values[i][j] * inv_rms));
        result.v[j] = FromFloat<T>(ToFloat(wi.v[j]) * normalized);
      }
      o_row[v] = result;
    }
  }
}

// A warp a row.
LaunchShape ShapeFor(int64_t rows) {
  return {dim3(static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock)),
          dim3(32 * kWarpsPerBlock)};
}

template <typename T, int kVectors>
int LaunchRms(const void* x, const void* residual, const void* weight, void* sum_out, void* out,
              int64_t rows, int width, float eps, cudaStream_t stream, bool overlap) {
  return LaunchKernel(ResidualRmsNormKernel<T, kVectors>, ShapeFor(rows), stream, overlap,
                      static_cast<const T*>(x), static_cast<const T*>(residual),
                      static_cast<const T*>(weight), static_cast<T*>(sum_out), static_cast<T*>(out),
                      rows, width, eps);
}

// Calls `launch` with the kernels' kVectors for rows of `width` elements: the fewest 16-byte
// vectors per lane that hold a row in one warp.
template <typename Launch>
int ByVectorsPerLane(int width, Launch&& launch) {
  const int vectors_per_lane = (width / 8 + 31) / 32;
  if (vectors_per_lane <= 1) return launch(std::integral_constant<int, 1>());
  if (vectors_per_lane <= 2) return launch(std::integral_constant<int, 2>());
  if (vectors_per_lane <= 4) return launch(std::integral_constant<int, 4>());
  if (vectors_per_lane <= 8) return launch(std::integral_constant<int, 8>());
  return launch(std::integral_constant<int, 32>());
}

template <typename T>
int LaunchRmsFor(const void* x, const void* residual, const void* weight, void* sum_out, void* out,
                 int64_t rows, int width, float eps, cudaStream_t stream, bool overlap) {
  return ByVectorsPerLane(width, [&](auto vectors) {
    return LaunchRms<T, decltype(vectors)::value>(x, residual, weight, sum_out, out, rows, width,
                                                  eps, stream, overlap);
  });
}

template <typename T, int kVectors>
int Launch(const void* x, const void* residual, const void* weight, const void* bias, void* out,
           int64_t rows, int width, float eps, cudaStream_t stream, bool overlap) {
  return LaunchKernel(ResidualLayerNormKernel<T, kVectors>, ShapeFor(rows), stream, overlap,
                      static_cast<const T*>(x), static_cast<const T*>(residual),
                      static_cast<const T*>(weight), static_cast<const T*>(bias),
                      static_cast<T*>(out), rows, width, eps);
}

template <typename T>
int LaunchFor(const void* x, const void* residual, const void* weight, const void* bias, void* out,
              int64_t rows, int width, float eps, cudaStream_t stream, bool overlap) {
  return ByVectorsPerLane(width, [&](auto vectors) {
    return Launch<T, decltype(vectors)::value>(x, residual, weight, bias, out, rows, width, eps,
                                               stream, overlap);
  });
}

}  // namespace

bool CanResidualLayerNorm(int64_t width) { return width % 8 == 0 && width > 0 && width <= 8192; }

int ResidualLayerNorm(HalfType type, const void* x, const void* residual, const void* weight,
                      const void* bias, void* out, int64_t rows, int64_t width, float eps,
                      void* stream, bool overlap) {
  if (!CanResidualLayerNorm(width)) return -1;
  if (rows == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int w = static_cast<int>(width);
  return type == HalfType::kFloat16
             ? LaunchFor<__half>(x, residual, weight, bias, out, rows, w, eps, s, overlap)
             : LaunchFor<__nv_bfloat16>(x, residual, weight, bias, out, rows, w, eps, s, overlap);
}

int ResidualRmsNorm(HalfType type, const void* x, const void* residual, const void* weight,
                    void* sum_out, void* out, int64_t rows, int64_t width, float eps, void* stream,
                    bool overlap) {
  if (!CanResidualLayerNorm(width)) return -1;
  if (rows == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int w = static_cast<int>(width);
  return type == HalfType::kFloat16
             ? LaunchRmsFor<__half>(x, residual, weight, sum_out, out, rows, w, eps, s, overlap)
             : LaunchRmsFor<__nv_bfloat16>(x, residual, weight, sum_out, out, rows, w, eps, s,
                                           overlap);
}

}  // namespace modelpool::kernels
