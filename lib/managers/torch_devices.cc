#include "lib/managers/torch_devices.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "lib/models/cuda_capture_lock.h"
#include "modelpool/base/logging.h"
#include "torch/cuda.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace modelpool {

void ReleaseCachedTorchMemory(const Device& device) {
#ifdef MODELPOOL_TORCH_CUDA
  if (device.is_cuda() && torch::cuda::is_available()) {
    absl::WriterMutexLock no_capture(&CudaCaptureLock());
    try {
      c10::cuda::CUDACachingAllocator::emptyCache();
    } catch (const c10::Error& e) {
      Log(LogSeverity::kWarning,
          absl::StrCat("the CUDA allocator kept its cached memory: ", e.what_without_backtrace()));
    }
  }
#endif
}

}  // namespace modelpool
