#ifndef MODELPOOL_DEVICES_FAKE_DEVICE_INVENTORY_H_
#define MODELPOOL_DEVICES_FAKE_DEVICE_INVENTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/device_inventory.h"

namespace modelpool {

// FakeDeviceInventory
//
// GPUs that exist only in memory, with free VRAM the test sets, for sizing and placement
// tests without a GPU. Thread-safe.
class FakeDeviceInventory : public DeviceInventory {
 public:
  // Adds a GPU and returns its index.
  int AddGpu(std::string name, int64_t total_bytes, int64_t free_bytes);
  // Sets the free memory that later readings of GPU `index` report.
  void SetFreeBytes(int index, int64_t free_bytes);
  // Adds `delta` (negative to take memory) to GPU `index`'s free memory, in one step.
  void ChangeFreeBytes(int index, int64_t delta);

  int GpuCount() const override;
  absl::StatusOr<GpuInfo> Gpu(int index) const override;

 private:
  mutable Mutex mu_;
  std::vector<GpuInfo> gpus_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool

#endif  // MODELPOOL_DEVICES_FAKE_DEVICE_INVENTORY_H_
