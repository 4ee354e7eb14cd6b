#include <cuda_runtime.h>

#include "lib/models/kernels/overlapped_launch.cuh"
#include "lib/models/kernels/per_device_answer.h"

namespace modelpool::kernels {
namespace {

// Built with the same architectures as every kernel of the library: its PTX version is theirs.
__global__ void Probe() {
  LetNextKernelStart();
  WaitForPrecedingKernel();
}

// On `device`, as the launches ask: the current device.
bool AskCuda(int device) {
  int major = 0;
  cudaFuncAttributes attributes{};
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaFuncGetAttributes(&attributes, Probe) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major >= 9 && attributes.ptxVersion >= 90;
}

}  // namespace

bool OverlappedLaunchRunsOn(int device) {
  static PerDeviceAnswer runs_on(AskCuda);
  return runs_on.For(device);
}

}  // namespace modelpool::kernels
