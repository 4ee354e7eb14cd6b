#include "lib/managers/torch_devices.h"

#include "absl/strings/str_cat.h"
#include "modelpool/base/logging.h"
#include "torch/cuda.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace modelpool {

void ReleaseCachedTorchMemory(const Device& device) {
#ifdef MODELPOOL_TORCH_CUDA
  if (device.is_cuda() && torch::cuda::is_available()) {
    c10::cuda::CUDACachingAllocator::emptyCache();
  }
#endif
}

}  // namespace modelpool
