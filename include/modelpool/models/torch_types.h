#ifndef MODELPOOL_MODELS_TORCH_TYPES_H_
#define MODELPOOL_MODELS_TORCH_TYPES_H_

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>

#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/devices/device_inventory.h"

namespace modelpool {

// libtorch's names for a `Device` and a `DType`, for custom managers that load libtorch or
// TorchScript models (see examples/custom_manager).
c10::Device ToTorchDevice(const Device& device);
c10::ScalarType ToTorchType(DType dtype);

// TorchDevices()
//
// `inventory` (`DeviceInventory::System()` when null) as libtorch sees it: its
// `UsableGpuCount()` is 0 when this libtorch has no CUDA support, so managers given it run on
// the CPU (or fail with `force_gpu`), and the count libtorch sees otherwise. The same inventory
// always gives the same object, so managers and worker pools given it share one memory budget.
// The SDK's managers and `WorkerPool` apply it themselves; a custom manager passes it to
// `AbstractModelManager`'s constructor.
std::shared_ptr<DeviceInventory> TorchDevices(std::shared_ptr<DeviceInventory> inventory = nullptr);

}  // namespace modelpool

#endif  // MODELPOOL_MODELS_TORCH_TYPES_H_
