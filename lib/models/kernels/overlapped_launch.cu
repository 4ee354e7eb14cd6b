#include <cuda_runtime.h>

#include <optional>

#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/per_device_answer.h"

namespace modelpool::kernels {
namespace {

// Built with the same architectures as every kernel of the library: its PTX version is theirs.
__global__ void Probe() {
  LetNextKernelStart();
  WaitForPrecedingKernel();
}

// On `device`, the current device when a launch asks; nullopt where CUDA does not answer.
std::optional<bool> AskCuda(int device) {
  int major = 0;
  cudaFuncAttributes attributes{};
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaFuncGetAttributes(&attributes, Probe) != cudaSuccess) {
    (void)cudaGetLastError();  // the failed query's own error, not left for a launch to report
    return std::nullopt;
  }
  return major >= 9 && attributes.ptxVersion >= 90;
}

}  // namespace

bool OverlappedLaunchRunsOn(int device) {
  static PerDeviceAnswer runs_on(AskCuda);
  return runs_on.For(device);
}

}  // namespace modelpool::kernels
