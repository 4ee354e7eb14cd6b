#include "lib/models/generation/static_steps.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "ATen/ATen.h"
#include "absl/strings/str_cat.h"
#include "lib/models/cuda_capture_lock.h"
#include "modelpool/base/logging.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#endif

namespace modelpool {

// Note [Decoder steps in a CUDA graph]
// A decoder step for one token per row is a few hundred small kernels (t5-large: 24 layers
// of norms, projections, two attentions and a feed-forward), and launching them takes longer
// than running them: the GPU waits on the host. A CUDA graph launches them all at once. A graph
// replays fixed kernels with fixed arguments on fixed memory, so the step it captures must not
// depend on the position through a shape or a host value:
// - the position is an int64 tensor on the device, and the new keys and values go there with
//   index_copy_;
// - self-attention runs over every position the caches hold (max_new_tokens on a GPU), those
//   past the current one masked to the lowest value (their weight is exactly 0; the caches are
//   zeroed per batch so that the masked values are finite), or not read at all where flash
//   attention takes the number of keys from the device (Note [Decoder attention kernels]);
// - T5's relative position bias is gathered from its one row by position arithmetic on the
//   device, and BART's learned positions by index_select.
// The graph is captured per batch, at its second step: the first runs the same static step
// eagerly, which also warms up cuBLAS on the stream, as capture needs. The batch's shapes (rows,
// input length) are fixed from StartDecoding on, and the caches never move on a GPU. Beam
// bookkeeping and cache reorders run outside the graph. A capture that fails is logged and the
// batch goes on with static steps, and no later batch of the process tries again: a capture
// that fails can leave the allocator counting it as under way (Note [CUDA graph captures and
// the allocator's cache]).

absl::StatusOr<DecoderSteps> ChooseDecoderSteps(const StepDecoder& decoder, c10::Device device,
                                                int64_t max_new_tokens) {
  DecoderSteps steps = device.is_cuda() ? DecoderSteps::kGraph : DecoderSteps::kEager;
  if (const char* env = std::getenv("MODELPOOL_DECODER_STEPS"); env != nullptr) {
    const std::string value(env);
    if (value == "eager") steps = DecoderSteps::kEager;
    if (value == "static") steps = DecoderSteps::kStatic;
    if (value == "graph") steps = DecoderSteps::kGraph;
    if (value != "eager" && value != "static" && value != "graph") {
      return absl::InvalidArgumentError(absl::StrCat(
          "MODELPOOL_DECODER_STEPS is \"", value.substr(0, 64), "\": eager, static or graph"));
    }
  }
#ifndef MODELPOOL_TORCH_CUDA
  if (steps == DecoderSteps::kGraph) steps = DecoderSteps::kStatic;
#endif
  if (steps == DecoderSteps::kGraph && !device.is_cuda()) steps = DecoderSteps::kStatic;
  if (steps != DecoderSteps::kEager && !decoder.CanStepAt(max_new_tokens)) {
    steps = DecoderSteps::kEager;
  }
  return steps;
}

#ifdef MODELPOOL_TORCH_CUDA
namespace {

// Set by the first capture that fails; from then on every batch runs static steps.
std::atomic<bool> captures_failed{false};

}  // namespace

struct StaticSteps::Graph {
  at::cuda::CUDAGraph graph;
  at::Tensor logits;  // written by each replay
};
#else
struct StaticSteps::Graph {};
#endif

StaticSteps::StaticSteps(StepDecoder& decoder, int64_t rows, c10::Device device, bool graph)
    : decoder_(decoder),
      graph_wanted_(graph),
      tokens_(at::zeros({rows}, at::TensorOptions().dtype(at::kLong).device(device))),
      position_(at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(device))) {}

StaticSteps::~StaticSteps() = default;

at::Tensor StaticSteps::Step(const at::Tensor& tokens, int64_t position) {
  tokens_.copy_(tokens);
  position_.fill_(position);
#ifdef MODELPOOL_TORCH_CUDA
  if (graph_ != nullptr) {
    graph_->graph.replay();
    return graph_->logits;
  }
  if (graph_wanted_ && position > 0 && !captures_failed.load()) {
    auto captured = std::make_unique<Graph>();
    std::string failure;
    {
      absl::ReaderMutexLock no_cache_release(&CudaCaptureLock());
      bool capturing = false;
      try {
        // Thread-local: other workers keep launching on their own streams meanwhile.
        captured->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
        capturing = true;
        captured->logits = decoder_.StepAt(tokens_, position_);
        capturing = false;
        captured->graph.capture_end();
      } catch (const c10::Error& e) {
        failure = e.what_without_backtrace();
      } catch (const std::exception& e) {
        failure = e.what();
      }
      if (capturing) {
        try {
          captured->graph.capture_end();  // the stream must leave capture mode
        } catch (const std::exception&) {
        }
      }
    }
    if (failure.empty()) {
      graph_ = std::move(captured);
      graph_->graph.replay();
      return graph_->logits;
    }
    if (!captures_failed.exchange(true)) {
      Log(LogSeverity::kError,
          absl::StrCat("decoder steps run without CUDA graphs from now on: a capture failed: ",
                       failure));
    }
  }
#endif
  return decoder_.StepAt(tokens_, position_);
}

void StaticSteps::Reorder(const at::Tensor& parents, int64_t length) {
  decoder_.Reorder(parents, length);
}

}  // namespace modelpool
