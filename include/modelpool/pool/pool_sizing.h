#ifndef MODELPOOL_POOL_POOL_SIZING_H_
#define MODELPOOL_POOL_POOL_SIZING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/devices/memory_governor.h"

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

// What one device offers a model's pool.
struct DeviceRoom {
  Device device;
  // What new instances may take there now, and what they could take if the idle instances of
  // other models were evicted.
  int64_t room_bytes = 0;
  int64_t capacity_bytes = 0;
  // Instances of the model already there.
  int placed = 0;
  // The model's footprint on this device.
  MemoryFootprint footprint;
  // For messages: "cuda:0 has 3.00 GiB free".
  std::string reading;
};

// PlanPool()
//
// Sizes a pool of at most `max_instances` over `rooms`: a device takes the instances it holds
// plus those that fit its room (the first new one paying the shared bytes when none is there),
// and at least one if its capacity takes one (a load may evict another model's idle instances).
// The sum is spread evenly over the devices. Room for no instance anywhere is
// `ResourceExhausted`, naming `model_name`, what one instance needs and each device's reading.
absl::StatusOr<PoolPlan> PlanPool(absl::string_view model_name, int max_instances,
                                  const std::vector<DeviceRoom>& rooms);

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

}  // namespace modelpool

#endif  // MODELPOOL_POOL_POOL_SIZING_H_
