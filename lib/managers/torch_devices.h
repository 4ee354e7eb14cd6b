#ifndef MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_
#define MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"

namespace modelpool {

// StayOffGpusTorchCannotUse()
//
// The inventory asks the CUDA runtime, but the libtorch models run on may be a CPU-only
// build. When `inventory` has GPUs that libtorch cannot use, sets `settings` to run on the CPU
// and logs why, naming `model_name`; with `force_gpu` that is `FailedPrecondition` instead.
absl::Status StayOffGpusTorchCannotUse(absl::string_view model_name,
                                       const DeviceInventory& inventory, Settings& settings);

// Hands the blocks libtorch's caching allocator keeps on `device` back to the driver, so that a
// reading of free memory shows what unloaded instances released. Nothing on the CPU.
void ReleaseCachedTorchMemory(const Device& device);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_
