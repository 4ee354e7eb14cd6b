#ifndef MODELPOOL_DEVICES_DEVICE_INVENTORY_H_
#define MODELPOOL_DEVICES_DEVICE_INVENTORY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace modelpool {

// What a GPU is and how much memory it has now.
struct GpuInfo {
  int index = 0;
  std::string name;
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// DeviceInventory
//
// The GPUs of this host and their memory. Implementations are thread-safe.
class DeviceInventory {
 public:
  virtual ~DeviceInventory() = default;

  // The number of usable GPUs; 0 when there is no GPU, no driver or no CUDA runtime.
  virtual int GpuCount() const = 0;

  // A fresh reading of GPU `index`. `InvalidArgument` for an index out of range,
  // `Unavailable` when the runtime cannot be asked.
  virtual absl::StatusOr<GpuInfo> Gpu(int index) const = 0;

  // The GPUs the library the models run on can use, at most `GpuCount()`: fewer when that
  // library is a CPU-only build (see `TorchDevices()` in modelpool/models/torch_types.h).
  // Devices are chosen among these.
  virtual int UsableGpuCount() const { return GpuCount(); }
  // Why `UsableGpuCount()` is below `GpuCount()`, for messages; empty when it is not.
  virtual std::string UnusableGpuReason() const { return ""; }

  // The inventory of this process's host, through the CUDA runtime when the SDK was built
  // with it (an inventory with no GPUs otherwise). Shared by every caller.
  static std::shared_ptr<DeviceInventory> System();
};

}  // namespace modelpool

#endif  // MODELPOOL_DEVICES_DEVICE_INVENTORY_H_
