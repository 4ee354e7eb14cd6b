// linear_bench: the small-batch linear kernel (Note [Small-batch linear]) against cuBLAS
// (at::linear) on the decoder's shapes, in bfloat16: microseconds a call and the weights' bytes
// a second, each side's calls replayed from a CUDA graph of 100, so that launching from the host
// costs neither anything. One JSON line a shape; "ratio" is cuBLAS's time over ours.
//
//   linear_bench
#include <cstdint>
#include <cstdio>

#include "ATen/ATen.h"
#include "absl/strings/str_format.h"
#include "benchmarks/graph_timing.h"
#include "lib/models/fused_ops.h"
#include "torch/cuda.h"

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
      const double ours = modelpool::bench::MicrosecondsPerCall(
          [&] { (void)modelpool::SmallBatchLinear(x, w, b); });
      const double cublas =
          modelpool::bench::MicrosecondsPerCall([&] { (void)at::linear(x, w, b); });
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
