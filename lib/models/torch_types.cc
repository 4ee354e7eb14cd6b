#include "modelpool/models/torch_types.h"

#include <algorithm>
#include <map>

#include "modelpool/base/internal/mutex.h"
#include "torch/cuda.h"

namespace modelpool {

c10::Device ToTorchDevice(const Device& device) {
  return device.is_cuda()
             ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device.index))
             : c10::Device(c10::DeviceType::CPU);
}

c10::ScalarType ToTorchType(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return c10::ScalarType::Half;
    case DType::kBFloat16:
      return c10::ScalarType::BFloat16;
    case DType::kFloat32:
      return c10::ScalarType::Float;
  }
  return c10::ScalarType::Float;
}

namespace {

// An inventory's GPUs, limited to those libtorch can use.
class TorchDeviceInventory : public DeviceInventory {
 public:
  explicit TorchDeviceInventory(std::shared_ptr<DeviceInventory> base) : base_(std::move(base)) {}

  int GpuCount() const override { return base_->GpuCount(); }
  absl::StatusOr<GpuInfo> Gpu(int index) const override { return base_->Gpu(index); }
  int UsableGpuCount() const override {
    if (!torch::cuda::is_available()) return 0;
    return std::min<int>(base_->UsableGpuCount(), static_cast<int>(torch::cuda::device_count()));
  }
  std::string UnusableGpuReason() const override {
    return torch::cuda::is_available() ? base_->UnusableGpuReason()
                                       : "the libtorch this SDK uses has no CUDA support";
  }

 private:
  const std::shared_ptr<DeviceInventory> base_;
};

}  // namespace

std::shared_ptr<DeviceInventory> TorchDevices(std::shared_ptr<DeviceInventory> inventory) {
  if (inventory == nullptr) inventory = DeviceInventory::System();
  if (dynamic_cast<const TorchDeviceInventory*>(inventory.get()) != nullptr) return inventory;
  // One wrapper per inventory, kept while anyone holds it: the memory governor is one per
  // inventory object.
  static Mutex mu;
  static auto* wrappers = new std::map<const DeviceInventory*, std::weak_ptr<DeviceInventory>>();
  MutexLock lock(&mu);
  for (auto it = wrappers->begin(); it != wrappers->end();) {
    it = it->second.expired() ? wrappers->erase(it) : std::next(it);
  }
  std::weak_ptr<DeviceInventory>& slot = (*wrappers)[inventory.get()];
  if (std::shared_ptr<DeviceInventory> wrapper = slot.lock()) return wrapper;
  auto wrapper = std::make_shared<TorchDeviceInventory>(std::move(inventory));
  slot = wrapper;
  return wrapper;
}

}  // namespace modelpool
