#include "lib/managers/torch_devices.h"

#include "absl/strings/str_cat.h"
#include "modelpool/base/logging.h"
#include "torch/cuda.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace modelpool {

absl::Status StayOffGpusTorchCannotUse(absl::string_view model_name,
                                       const DeviceInventory& inventory, Settings& settings) {
  if (settings.force_cpu || inventory.GpuCount() == 0 || torch::cuda::is_available()) {
    return absl::OkStatus();
  }
  if (settings.force_gpu) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_name, ": force_gpu is set, but the libtorch this SDK uses has no CUDA support"));
  }
  Log(LogSeverity::kWarning,
      absl::StrCat(model_name, ": this host has ", inventory.GpuCount(),
                   " GPU(s), but the libtorch this SDK uses has no CUDA support: running on "
                   "the cpu"));
  settings.force_cpu = true;
  settings.devices.clear();
  return absl::OkStatus();
}

void ReleaseCachedTorchMemory(const Device& device) {
#ifdef MODELPOOL_TORCH_CUDA
  if (device.is_cuda() && torch::cuda::is_available()) {
    c10::cuda::CUDACachingAllocator::emptyCache();
  }
#endif
}

}  // namespace modelpool
