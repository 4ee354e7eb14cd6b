#ifndef MODELPOOL_BENCHMARKS_GRAPH_TIMING_H_
#define MODELPOOL_BENCHMARKS_GRAPH_TIMING_H_

// Timing one kernel's calls with no launch cost from the host: the calls replayed from a CUDA
// graph.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <functional>

namespace modelpool::bench {

// Microseconds per call of `call`, 100 calls captured in a graph on a stream of their own and
// the graph replayed 5 times, after 3 calls and one replay to warm up.
inline double MicrosecondsPerCall(const std::function<void()>& call) {
  constexpr int kCallsPerGraph = 100;
  constexpr int kReplays = 5;
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

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_GRAPH_TIMING_H_
