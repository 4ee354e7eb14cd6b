#ifndef MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_CUH_
#define MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_CUH_

// How our kernels launch: with Hopper's programmatic dependent launch where it runs, so that a
// kernel starts while the one before it on the stream finishes.

#include <cuda_runtime.h>

#include <utility>

#include "lib/models/kernels/overlapped_launch.h"

namespace modelpool::kernels {

// Note [Overlapped launches]
// A decoding step is a few hundred kernels of a few microseconds each, and between two of them
// the GPU idles: about 1.3 us a boundary in a CUDA graph (t5-large, 32 texts, greedy: 30 of
// 172 ms a batch). Launched with programmatic stream serialization, a kernel's blocks may start
// once every block of the kernel before it has started (LetNextKernelStart, which each of our
// kernels calls first), so its launch and first loads overlap the previous kernel's work. Each
// such kernel must then call WaitForPrecedingKernel, which returns once every earlier kernel on
// the stream has finished and its writes are visible, before it reads anything the stream wrote
// or writes anything at all: before the wait, a kernel may read only what nothing in flight
// writes, such as a model's weights. A kernel that never waits must not be launched this way:
// LaunchKernel's `overlap` is for kernels that call both functions.
//
// Measured (H200, generate_bench, off and on twice each): one text 6-8% faster for a
// bart-large-cnn shape (1,300-1,324 to 1,408-1,410 new tokens/s), 11-13% for t5-large (733-737
// to 817-828); 32 texts within 1%, as there most of a step is cuBLAS's kernels, which are
// launched the usual way. Two workers on one GPU did not get in each other's way (1.11x one
// worker, t5-large, 4 beams). MODELPOOL_OVERLAPPED_LAUNCHES=0 launches one after another.

// Lets the next kernel on the stream start its blocks once all of this kernel's have started.
__device__ __forceinline__ void LetNextKernelStart() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Returns once the kernels before this one on the stream have finished and their writes are
// visible; at once where the launch did not overlap.
__device__ __forceinline__ void WaitForPrecedingKernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

struct LaunchShape {
  dim3 grid;
  dim3 block;
  size_t shared = 0;     // dynamic shared memory, bytes
  unsigned cluster = 0;  // blocks a cluster along the grid's y; 0: no clusters
};

// Launches `kernel` on `stream`, overlapping the kernel before it when `overlap` and the device
// takes it (OverlappedLaunchRunsOn). Returns the launch's cudaError_t as an int, CUDA's last
// error cleared, so that a failure is reported once, here.
template <typename... Params, typename... Args>
int LaunchKernel(void (*kernel)(Params...), const LaunchShape& shape, cudaStream_t stream,
                 bool overlap, Args&&... args) {
  cudaLaunchAttribute attributes[2] = {};
  unsigned count = 0;
  if (shape.cluster > 0) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count].val.clusterDim.x = 1;
    attributes[count].val.clusterDim.y = shape.cluster;
    attributes[count].val.clusterDim.z = 1;
    ++count;
  }
  int device = 0;
  if (overlap && cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();  // launched one after another; the launch reports what follows
    overlap = false;
  }
  if (overlap && OverlappedLaunchRunsOn(device)) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count].val.programmaticStreamSerializationAllowed = 1;
    ++count;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = shape.grid;
  config.blockDim = shape.block;
  config.dynamicSmemBytes = shape.shared;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
  const cudaError_t error = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  if (error != cudaSuccess) (void)cudaGetLastError();
  return static_cast<int>(error);
}

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_OVERLAPPED_LAUNCH_CUH_
