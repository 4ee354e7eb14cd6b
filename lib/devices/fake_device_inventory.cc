#include "modelpool/devices/fake_device_inventory.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace modelpool {

int FakeDeviceInventory::AddGpu(std::string name, int64_t total_bytes, int64_t free_bytes) {
  MutexLock lock(&mu_);
  const int index = static_cast<int>(gpus_.size());
  gpus_.push_back(GpuInfo{index, std::move(name), free_bytes, total_bytes});
  return index;
}

void FakeDeviceInventory::SetFreeBytes(int index, int64_t free_bytes) {
  MutexLock lock(&mu_);
  if (index >= 0 && index < static_cast<int>(gpus_.size())) gpus_[index].free_bytes = free_bytes;
}

void FakeDeviceInventory::ChangeFreeBytes(int index, int64_t delta) {
  MutexLock lock(&mu_);
  if (index >= 0 && index < static_cast<int>(gpus_.size())) gpus_[index].free_bytes += delta;
}

int FakeDeviceInventory::GpuCount() const {
  MutexLock lock(&mu_);
  return static_cast<int>(gpus_.size());
}

absl::StatusOr<GpuInfo> FakeDeviceInventory::Gpu(int index) const {
  MutexLock lock(&mu_);
  if (index < 0 || index >= static_cast<int>(gpus_.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("no GPU ", index, ": the inventory has ", gpus_.size()));
  }
  return gpus_[index];
}

}  // namespace modelpool
