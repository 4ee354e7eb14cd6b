// Overlapped launches (Note [Overlapped launches]): kernels that start while the one before them
// finishes must still see all of its writes. Built only where the CUDA kernels are
// (MODELPOOL_CUDA_KERNELS).

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "c10/cuda/CUDAGuard.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernels/cross_attention.h"
#include "lib/models/kernels/decode_attention.h"
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
constexpr int64_t kHeads = 16;
constexpr int64_t kHeadDim = kWidth / kHeads;
constexpr int64_t kSelfCapacity = 32;
constexpr int64_t kPosition = 20;
constexpr int64_t kCrossCapacity = 128;
constexpr int kLinks = 24;

// The operands of a chain of a decoder layer's kernels, each reading what the one before wrote.
struct Chain {
  std::vector<at::Tensor> weights;  // [kWidth, kWidth] each
  at::Tensor key_value_weight;      // [2 * kWidth, kWidth]
  at::Tensor norm_weight, norm_bias;
  at::Tensor cross_keys, cross_values;  // [kRows, kHeads, kCrossCapacity, kHeadDim]
  at::Tensor cross_lengths;             // int32 [kRows]
  at::Tensor position;                  // int64 [1]
  at::Tensor workspace;
  // What a run starts from: h [kRows, kWidth], and the self-attention caches
  // [kRows, kHeads, kSelfCapacity, kHeadDim], which the chain writes.
  at::Tensor start, self_keys, self_values;
};

// Made on the current stream, which the chain then runs on.
Chain RandomChain() {
  const at::TensorOptions bf16 = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  Chain c;
  for (int i = 0; i < 3; ++i) c.weights.push_back(at::randn({kWidth, kWidth}, bf16) / 32);
  c.key_value_weight = at::randn({2 * kWidth, kWidth}, bf16) / 32;
  c.norm_weight = at::rand({kWidth}, bf16) + 0.5;
  c.norm_bias = at::randn({kWidth}, bf16);
  c.cross_keys = at::randn({kRows, kHeads, kCrossCapacity, kHeadDim}, bf16);
  c.cross_values = at::randn({kRows, kHeads, kCrossCapacity, kHeadDim}, bf16);
  c.cross_lengths = at::tensor(std::vector<int32_t>{128, 100, 77, 128}).to(at::kCUDA);
  c.position = at::full({1}, kPosition, at::TensorOptions().device(at::kCUDA).dtype(at::kLong));
  c.workspace =
      at::empty({kernels::CrossAttentionWorkspaceBytes(kRows, 1, kHeads, kHeadDim, kCrossCapacity)},
                bf16.dtype(at::kByte));
  c.start = at::randn({kRows, kWidth}, bf16);
  c.self_keys = at::randn({kRows, kHeads, kSelfCapacity, kHeadDim}, bf16);
  c.self_values = at::randn({kRows, kHeads, kSelfCapacity, kHeadDim}, bf16);
  return c;
}

// What a run reads and writes: the residual stream, the self-attention caches and scratch rows.
struct State {
  at::Tensor h, self_keys, self_values, q, key_value, attended, y, crossed, normed;
};

State StateOf(const Chain& c) {
  return {c.start.clone(),
          c.self_keys.clone(),
          c.self_values.clone(),
          at::empty_like(c.start),
          at::empty({kRows, 2 * kWidth}, c.start.options()),
          at::empty_like(c.start),
          at::empty_like(c.start),
          at::empty_like(c.start),
          at::empty_like(c.start)};
}

void Reset(const Chain& c, State& s) {
  s.h.copy_(c.start);
  s.self_keys.copy_(c.self_keys);
  s.self_values.copy_(c.self_values);
}

// Runs the chain on the current stream, launching only our kernels (no allocation, so that it
// can be captured as it is). Returns 0 or the first launch error.
int RunChain(const Chain& c, State& s, bool overlap) {
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const kernels::HalfType type = HalfTypeOf(s.h);
  const auto linear = [&](const at::Tensor& x, const at::Tensor& w, at::Tensor& y) {
    return kernels::SmallBatchLinear(type, x.const_data_ptr(), w.const_data_ptr(), nullptr,
                                     y.data_ptr(), kRows, w.size(1), w.size(0), stream, overlap);
  };
  const char* key_values = static_cast<const char*>(s.key_value.const_data_ptr());
  const kernels::DecodeKeys self{s.self_keys.data_ptr(),
                                 s.self_values.data_ptr(),
                                 kSelfCapacity,
                                 /*sources=*/nullptr,
                                 c.position.const_data_ptr<int64_t>(),
                                 /*relative_bias=*/nullptr,
                                 /*bias_length=*/0,
                                 key_values,
                                 key_values + kWidth * s.key_value.element_size(),
                                 2 * kWidth};
  const kernels::CrossKeys cross{c.cross_keys.const_data_ptr(), c.cross_values.const_data_ptr(),
                                 kCrossCapacity, c.cross_lengths.const_data_ptr<int32_t>()};
  const float scale = 0.125f;
  for (int link = 0; link < kLinks; ++link) {
    int error = linear(s.h, c.weights[0], s.q);
    if (error == 0) error = linear(s.h, c.key_value_weight, s.key_value);
    if (error == 0) {  // writes the step's key and value at kPosition, reads keys 0..kPosition
      error =
          kernels::DecodeAttention(type, s.q.const_data_ptr(), kWidth, self, scale,
                                   s.attended.data_ptr(), kRows, kHeads, kHeadDim, stream, overlap);
    }
    if (error == 0) error = linear(s.attended, c.weights[1], s.y);
    if (error == 0) {  // y = LayerNorm(y + h)
      error = kernels::ResidualLayerNorm(
          type, s.y.const_data_ptr(), s.h.const_data_ptr(), c.norm_weight.const_data_ptr(),
          c.norm_bias.const_data_ptr(), s.y.data_ptr(), kRows, kWidth, 1e-5f, stream, overlap);
    }
    if (error == 0) {  // the split-key kernel and its combining kernel
      error = kernels::CrossAttention(type, s.y.const_data_ptr(), kWidth, cross, scale,
                                      s.crossed.data_ptr(), c.workspace.data_ptr(), kRows, 1,
                                      kHeads, kHeadDim, stream, overlap);
    }
    if (error == 0) {  // crossed = crossed + y, normed = RMSNorm(crossed)
      error = kernels::ResidualRmsNorm(type, s.crossed.const_data_ptr(), s.y.const_data_ptr(),
                                       c.norm_weight.const_data_ptr(), s.crossed.data_ptr(),
                                       s.normed.data_ptr(), kRows, kWidth, 1e-6f, stream, overlap);
    }
    if (error == 0) error = linear(s.normed, c.weights[2], s.h);
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

// Operands made on a stream of the pool, the chain run on the same one.
struct OnSideStream {
  c10::cuda::CUDAStreamGuard guard{c10::cuda::getStreamFromPool()};
};

TEST_CASE("Kernels launched overlapping compute what they compute one after another") {
  if (!OnHopper()) return;
  const OnSideStream on_side_stream;
  at::manual_seed(21);
  const Chain chain = RandomChain();
  std::vector<State> runs;
  for (bool overlap : {false, true, true}) {
    State state = StateOf(chain);
    REQUIRE(RunChain(chain, state, overlap) == 0);
    runs.push_back(state);
  }
  REQUIRE(runs[0].h.isfinite().all().item<bool>());
  // Bit for bit: the kernels sum in fixed orders, and a read that came before the write it
  // needed would give other bits.
  for (size_t i = 1; i < runs.size(); ++i) {
    INFO("overlapped run " << i);
    CHECK(at::equal(runs[0].h, runs[i].h));
    CHECK(at::equal(runs[0].self_keys, runs[i].self_keys));
    CHECK(at::equal(runs[0].crossed, runs[i].crossed));
  }
}

TEST_CASE("Kernels launched overlapping stay overlapped, and compute the same, in a CUDA graph") {
  if (!OnHopper()) return;
  const OnSideStream on_side_stream;
  at::manual_seed(22);
  const Chain chain = RandomChain();
  State state = StateOf(chain);
  REQUIRE(RunChain(chain, state, /*overlap=*/false) == 0);
  const at::Tensor expected = state.h.clone();

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  const int launched = RunChain(chain, state, /*overlap=*/true);
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  REQUIRE(launched == 0);

  // Each overlapped launch after one of our kernels is a programmatic edge of the graph.
  size_t count = 0;
  REQUIRE(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &count) == cudaSuccess);
  std::vector<cudaGraphNode_t> from(count), to(count);
  std::vector<cudaGraphEdgeData> edges(count);
  REQUIRE(cudaGraphGetEdges(graph, from.data(), to.data(), edges.data(), &count) == cudaSuccess);
  int programmatic = 0;
  for (const cudaGraphEdgeData& edge : edges) {
    if (edge.type == cudaGraphDependencyTypeProgrammatic) ++programmatic;
  }
  INFO(programmatic << " programmatic edges of " << count);
  CHECK(programmatic >= kLinks);

  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int replay = 0; replay < 3; ++replay) {
    INFO("replay " << replay);
    Reset(chain, state);
    REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
    CHECK(at::equal(state.h, expected));
  }
  CHECK(cudaGraphExecDestroy(exec) == cudaSuccess);
  CHECK(cudaGraphDestroy(graph) == cudaSuccess);
}

}  // namespace
}  // namespace modelpool
