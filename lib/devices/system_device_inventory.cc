#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/logging.h"
#include "modelpool/devices/device_inventory.h"

#ifdef MODELPOOL_HAVE_CUDA_RUNTIME
#include <cuda_runtime_api.h>
#endif

namespace modelpool {
namespace {

#ifdef MODELPOOL_HAVE_CUDA_RUNTIME

// Asks the CUDA runtime. Readings switch the calling thread's current device and put it back.
class CudaDeviceInventory : public DeviceInventory {
 public:
  CudaDeviceInventory() {
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess) {
      (void)cudaGetLastError();  // clear it, so later runtime calls do not see it
      Log(LogSeverity::kInfo,
          absl::StrCat("no usable GPU (CUDA runtime: ", cudaGetErrorString(error), ")"));
      count = 0;
    }
    count_ = count;
  }

  int GpuCount() const override { return count_; }

  absl::StatusOr<GpuInfo> Gpu(int index) const override {
    if (index < 0 || index >= count_) {
      return absl::InvalidArgumentError(absl::StrCat("no GPU ", index, ": this host has ", count_));
    }
    int previous = 0;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    GpuInfo info;
    info.index = index;
    cudaDeviceProp props{};
    size_t free_bytes = 0, total_bytes = 0;
    cudaError_t error = cudaGetDeviceProperties(&props, index);
    if (error == cudaSuccess) error = cudaSetDevice(index);
    if (error == cudaSuccess) error = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (previous >= 0) (void)cudaSetDevice(previous);
    if (error != cudaSuccess) {
      (void)cudaGetLastError();
      return absl::UnavailableError(
          absl::StrCat("cannot read cuda:", index, " memory: ", cudaGetErrorString(error)));
    }
    info.name = props.name;
    info.free_bytes = static_cast<int64_t>(free_bytes);
    info.total_bytes = static_cast<int64_t>(total_bytes);
    return info;
  }

 private:
  int count_ = 0;
};

using SystemInventory = CudaDeviceInventory;

#else

class NoGpuInventory : public DeviceInventory {
 public:
  NoGpuInventory() {
    Log(LogSeverity::kInfo, "modelpool was built without the CUDA runtime: no GPU is used");
  }
  int GpuCount() const override { return 0; }
  absl::StatusOr<GpuInfo> Gpu(int index) const override {
    return absl::InvalidArgumentError(
        absl::StrCat("no GPU ", index, ": modelpool was built without the CUDA runtime"));
  }
};

using SystemInventory = NoGpuInventory;

#endif

}  // namespace

std::shared_ptr<DeviceInventory> DeviceInventory::System() {
  static const auto* inventory =
      new std::shared_ptr<DeviceInventory>(std::make_shared<SystemInventory>());
  return *inventory;
}

}  // namespace modelpool
