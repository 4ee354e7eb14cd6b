// linear_bench: the small-batch linear kernel (Note [Small-batch linear]) against cuBLAS
// (at::linear) on the decoder's shapes, in bfloat16: microseconds a call and the weights' bytes
// a second, each side's calls replayed from a CUDA graph of 100, so that launching from the host
// costs neither anything. One JSON line a shape; "ratio" is cuBLAS's time over ours.
//
//   linear_bench
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <functional>

#include "ATen/ATen.h"
#include "absl/strings/str_format.h"
#include "lib/models/fused_ops.h"
#include "torch/cuda.h"

namespace {

constexpr int kCallsPerGraph = 100;
constexpr int kReplays = 5;

// Microseconds per call of `call`, replayed from a graph on a stream of its own.
double MicrosecondsPerCall(const std::function<void()>& call) {
  const c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  const c10::cuda::CUDAStreamGuard guard(stream);
  for (int i = 0; i < 3; ++i) call();
  at::cuda::CUDAGraph graph;
  graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < kCallsPerGraph; ++i) call();
  graph.capture_end();
  graph.replay();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream.stream());
  for (int i = 0; i < kReplays; ++i) graph.replay();
  cudaEventRecord(stop, stream.stream());
  cudaEventSynchronize(stop);
  float ms = 0.f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 1000.0 * ms / (kReplays * kCallsPerGraph);
}

}  // namespace

int main() {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "linear_bench needs a CUDA device\n");
    return 1;
  }
  struct Shape {
    const char* name;
    int64_t in, out;
    bool bias;
  };
  const Shape shapes[] = {
      {"t5-large self qkv", 1024, 3072, false},  {"t5-large o, cross q", 1024, 1024, false},
      {"t5-large ffn in", 1024, 4096, false},    {"t5-large ffn out", 4096, 1024, false},
      {"bart-large o + bias", 1024, 1024, true}, {"bart-large fc1 + bias", 1024, 4096, true},
  };
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  for (const int64_t rows : {1, 8, 32, 64}) {
    for (const Shape& shape : shapes) {
      const at::Tensor x = at::randn({rows, shape.in}, options);
      const at::Tensor w = at::randn({shape.out, shape.in}, options);
      const at::Tensor b = shape.bias ? at::randn({shape.out}, options) : at::Tensor();
      if (!modelpool::SmallBatchLinear(x, w, b).has_value()) {
        std::printf("{\"what\": \"linear\", \"shape\": \"%s\", \"rows\": %ld, \"ours\": null}\n",
                    shape.name, static_cast<long>(rows));
        continue;
      }
      const double ours = MicrosecondsPerCall([&] { (void)modelpool::SmallBatchLinear(x, w, b); });
      const double cublas = MicrosecondsPerCall([&] { (void)at::linear(x, w, b); });
      const double bytes = 2.0 * static_cast<double>(shape.in * shape.out);
      std::printf("%s\n", absl::StrFormat("{\"what\": \"linear\", \"shape\": \"%s\", \"rows\": %d, "
                                          "\"ours_us\": %.2f, \"cublas_us\": %.2f, "
                                          "\"ours_tb_s\": %.2f, \"cublas_tb_s\": %.2f, "
                                          "\"ratio\": %.2f}",
                                          shape.name, rows, ours, cublas, bytes / ours / 1e6,
                                          bytes / cublas / 1e6, cublas / ours)
                              .c_str());
    }
  }
  return 0;
}
