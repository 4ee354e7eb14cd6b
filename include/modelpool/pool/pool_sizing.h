#ifndef MODELPOOL_POOL_POOL_SIZING_H_
#define MODELPOOL_POOL_POOL_SIZING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"

namespace modelpool {

// How many instances of one model a device may hold.
struct DeviceQuota {
  Device device;
  int instances = 0;
};

// PoolPlan
//
// Where a manager's instances may go. `total()` is the pool's size.
struct PoolPlan {
  std::vector<DeviceQuota> quotas;

  int total() const;
  // The quota of `device`, 0 if it has none.
  int QuotaOf(const Device& device) const;
  // "cuda:0 x3, cuda:1 x2".
  std::string ToString() const;
};

// SelectDevices()
//
// The devices a manager may use under `settings`: the listed devices, else every GPU, else the
// CPU, whose reason is written to `*cpu_reason` (when not null). `force_gpu` without a usable
// GPU is `FailedPrecondition`; a listed GPU that does not exist is `InvalidArgument`.
absl::StatusOr<std::vector<Device>> SelectDevices(const Settings& settings,
                                                  const DeviceInventory& inventory,
                                                  std::string* cpu_reason = nullptr);

// PlanPool()
//
// Sizes a pool of instances of `instance_bytes` each over `devices`. A GPU takes the instances
// it already holds (`placed`, in the order of `devices`; empty means none) plus
// floor((free VRAM - safety margin) / instance_bytes); the sum is capped at
// `settings.max_instances`, spread evenly over the GPUs. The CPU takes `max_instances`.
// Room for fewer than one instance is `ResourceExhausted`, naming `model_name`, the size
// and each device's free memory.
absl::StatusOr<PoolPlan> PlanPool(absl::string_view model_name, const Settings& settings,
                                  const DeviceInventory& inventory,
                                  const std::vector<Device>& devices, int64_t instance_bytes,
                                  const std::vector<int>& placed = {});

// "1.25 GiB", "512.00 MiB": bytes for messages.
std::string FormatBytes(int64_t bytes);

}  // namespace modelpool

#endif  // MODELPOOL_POOL_POOL_SIZING_H_
