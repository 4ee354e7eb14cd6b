// Overlapped launches (Note [Overlapped launches]): kernels that start while the one before them
// finishes must still see all of its writes. Built only where the CUDA kernels are
// (MODELPOOL_CUDA_KERNELS).

#include <cstdint>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "ATen/cuda/CUDAGraph.h"
#include "c10/cuda/CUDAGuard.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernels/overlapped_launch.h"
#include "lib/models/kernels/residual_layer_norm.h"
#include "lib/models/kernels/small_batch_linear.h"
#include "torch/cuda.h"

// After libtorch: glog defines CHECK too.
#include "catch2/catch.hpp"

namespace modelpool {
namespace {

constexpr int64_t kRows = 4;
constexpr int64_t kWidth = 1024;
constexpr int kLinks = 48;

// The operands of a chain in which every kernel reads what the kernel before it wrote.
struct Chain {
  std::vector<at::Tensor> weights;  // [kWidth, kWidth] each
  at::Tensor norm_weight, norm_bias, start;
};

Chain RandomChain() {
  const at::TensorOptions bf16 = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  Chain chain;
  for (int i = 0; i < 4; ++i) chain.weights.push_back(at::randn({kWidth, kWidth}, bf16) / 32);
  chain.norm_weight = at::rand({kWidth}, bf16) + 0.5;
  chain.norm_bias = at::randn({kWidth}, bf16);
  chain.start = at::randn({kRows, kWidth}, bf16);
  return chain;
}

// Runs the chain on the current stream from `h` (overwritten): per link a small-batch linear,
// a residual LayerNorm written over its input, and a residual RMSNorm, each the next kernel's
// input. Returns 0 or the first launch error.
int RunChain(const Chain& chain, at::Tensor& h, at::Tensor& y, at::Tensor& normed, bool overlap) {
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const kernels::HalfType type = HalfTypeOf(h);
  for (int link = 0; link < kLinks; ++link) {
    const at::Tensor& w = chain.weights[link % chain.weights.size()];
    int error = kernels::SmallBatchLinear(type, h.const_data_ptr(), w.const_data_ptr(), nullptr,
                                          y.data_ptr(), kRows, kWidth, kWidth, stream, overlap);
    if (error == 0) {  // y = LayerNorm(y + h)
      error = kernels::ResidualLayerNorm(
          type, y.const_data_ptr(), h.const_data_ptr(), chain.norm_weight.const_data_ptr(),
          chain.norm_bias.const_data_ptr(), y.data_ptr(), kRows, kWidth, 1e-5f, stream, overlap);
    }
    if (error == 0) {  // h = y + h, normed = RMSNorm(h)
      error = kernels::ResidualRmsNorm(type, y.const_data_ptr(), h.const_data_ptr(),
                                       chain.norm_weight.const_data_ptr(), h.data_ptr(),
                                       normed.data_ptr(), kRows, kWidth, 1e-6f, stream, overlap);
    }
    if (error == 0) {  // h = normed, by a kernel of ours: the next link reads it at once
      error = kernels::SmallBatchLinear(type, normed.const_data_ptr(), w.const_data_ptr(), nullptr,
                                        h.data_ptr(), kRows, kWidth, kWidth, stream, overlap);
    }
    if (error != 0) return error;
  }
  return 0;
}

bool OnHopper() {
  if (!torch::cuda::is_available() || at::cuda::getDeviceProperties(0)->major < 9) {
    WARN("no CUDA device of compute capability 9 or later: nothing to compare");
    return false;
  }
  REQUIRE(kernels::OverlappedLaunchRunsOn(0));
  return true;
}

TEST_CASE("Kernels launched overlapping compute what they compute one after another") {
  if (!OnHopper()) return;
  at::manual_seed(21);
  const Chain chain = RandomChain();
  const c10::cuda::CUDAStreamGuard on_side_stream(c10::cuda::getStreamFromPool());
  std::vector<at::Tensor> results;
  for (bool overlap : {false, true, true}) {
    at::Tensor h = chain.start.clone();
    at::Tensor y = at::empty_like(h), normed = at::empty_like(h);
    REQUIRE(RunChain(chain, h, y, normed, overlap) == 0);
    results.push_back(h);
  }
  REQUIRE(results[0].isfinite().all().item<bool>());
  // Bit for bit: the kernels sum in fixed orders, and a read that came before the write it
  // needed would give other bits.
  CHECK(at::equal(results[0], results[1]));
  CHECK(at::equal(results[0], results[2]));
}

TEST_CASE("Kernels launched overlapping compute the same inside a CUDA graph") {
  if (!OnHopper()) return;
  at::manual_seed(22);
  const Chain chain = RandomChain();
  const c10::cuda::CUDAStreamGuard on_side_stream(c10::cuda::getStreamFromPool());
  at::Tensor h = chain.start.clone();
  at::Tensor y = at::empty_like(h), normed = at::empty_like(h);
  REQUIRE(RunChain(chain, h, y, normed, /*overlap=*/false) == 0);
  const at::Tensor expected = h.clone();

  at::Tensor graph_h = at::empty_like(h);
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  REQUIRE(RunChain(chain, graph_h, y, normed, /*overlap=*/true) == 0);
  graph.capture_end();
  for (int replay = 0; replay < 3; ++replay) {
    INFO("replay " << replay);
    graph_h.copy_(chain.start);
    graph.replay();
    CHECK(at::equal(graph_h, expected));
  }
}

}  // namespace
}  // namespace modelpool
