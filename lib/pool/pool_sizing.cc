#include "modelpool/pool/pool_sizing.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "modelpool/base/status.h"

namespace modelpool {

int PoolPlan::total() const {
  int sum = 0;
  for (const DeviceQuota& q : quotas) sum += q.instances;
  return sum;
}

int PoolPlan::QuotaOf(const Device& device) const {
  for (const DeviceQuota& q : quotas) {
    if (q.device == device) return q.instances;
  }
  return 0;
}

std::string PoolPlan::ToString() const {
  return absl::StrJoin(quotas, ", ", [](std::string* out, const DeviceQuota& q) {
    absl::StrAppend(out, q.device.ToString(), " x", q.instances);
  });
}

absl::StatusOr<std::vector<Device>> SelectDevices(const Settings& settings,
                                                  const DeviceInventory& inventory,
                                                  std::string* cpu_reason) {
  MODELPOOL_RETURN_IF_ERROR(settings.Validate());
  auto on_cpu = [&](std::string reason) {
    if (cpu_reason != nullptr) *cpu_reason = std::move(reason);
    return std::vector<Device>{Device::Cpu()};
  };
  if (settings.force_cpu) return on_cpu("force_cpu is set");
  const int gpus = inventory.UsableGpuCount();
  if (gpus == 0 && inventory.GpuCount() > 0) {
    const std::string why = absl::StrCat("this host has ", inventory.GpuCount(), " GPU(s), but ",
                                         inventory.UnusableGpuReason());
    if (settings.force_gpu) return absl::FailedPreconditionError("force_gpu is set: " + why);
    return on_cpu(why);
  }
  if (!settings.devices.empty()) {
    if (!settings.devices.front().is_cuda()) return on_cpu("devices lists the cpu");
    for (const Device& d : settings.devices) {
      if (d.index >= gpus) {
        return absl::InvalidArgumentError(absl::StrCat(d.ToString(),
                                                       " is listed in devices, but this host has ",
                                                       gpus, " usable GPU", gpus == 1 ? "" : "s"));
      }
    }
    return settings.devices;
  }
  if (gpus == 0) {
    if (settings.force_gpu) {
      return absl::FailedPreconditionError(
          "force_gpu is set, but no GPU is usable (no device, no driver, or a CPU-only build)");
    }
    return on_cpu("no GPU is usable");
  }
  std::vector<Device> all;
  for (int i = 0; i < gpus; ++i) all.push_back(Device::Cuda(i));
  return all;
}

absl::StatusOr<PoolPlan> PlanPool(absl::string_view model_name, int max_instances,
                                  const std::vector<DeviceRoom>& rooms) {
  if (rooms.empty()) return absl::InvalidArgumentError("PlanPool: no devices");
  if (max_instances < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("PlanPool: max_instances is ", max_instances, ": it must be at least 1"));
  }
  // How many instances each device may hold, counting those it holds.
  std::vector<int> room(rooms.size(), 0);
  for (size_t i = 0; i < rooms.size(); ++i) {
    const DeviceRoom& r = rooms[i];
    const int64_t each = std::max<int64_t>(1, r.footprint.instance_bytes);
    const int64_t first = r.footprint.first_instance_bytes();
    int64_t more = 0;
    if (r.placed > 0) {
      more = std::max<int64_t>(0, r.room_bytes) / each;
    } else if (r.room_bytes >= first) {
      more = 1 + (r.room_bytes - first) / each;
    } else if (r.capacity_bytes >= first) {
      more = 1;
    }
    room[i] = static_cast<int>(std::min<int64_t>(more, 1 << 20)) + r.placed;
  }
  // Deal instances out one device at a time, so the cap spreads them evenly.
  std::vector<int> quota(rooms.size(), 0);
  int assigned = 0;
  for (bool progress = true; progress && assigned < max_instances;) {
    progress = false;
    for (size_t i = 0; i < rooms.size() && assigned < max_instances; ++i) {
      if (quota[i] < room[i]) {
        ++quota[i];
        ++assigned;
        progress = true;
      }
    }
  }
  if (assigned == 0) {
    std::vector<std::string> readings;
    for (const DeviceRoom& r : rooms) readings.push_back(r.reading);
    return absl::ResourceExhaustedError(absl::StrCat(
        model_name, " needs ", FormatBytes(rooms.front().footprint.first_instance_bytes()),
        " for one instance, but ", absl::StrJoin(readings, ", ")));
  }
  PoolPlan plan;
  for (size_t i = 0; i < rooms.size(); ++i) {
    if (quota[i] > 0) plan.quotas.push_back({rooms[i].device, quota[i]});
  }
  return plan;
}

absl::StatusOr<PoolPlan> PlanPool(absl::string_view model_name, const Settings& settings,
                                  const DeviceInventory& inventory,
                                  const std::vector<Device>& devices, int64_t instance_bytes,
                                  const std::vector<int>& placed) {
  MODELPOOL_RETURN_IF_ERROR(settings.Validate());
  if (devices.empty()) return absl::InvalidArgumentError("PlanPool: no devices");
  if (instance_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PlanPool: instance size ", instance_bytes, " is not positive"));
  }
  if (!placed.empty() && placed.size() != devices.size()) {
    return absl::InvalidArgumentError("PlanPool: placed and devices differ in length");
  }
  if (!devices.front().is_cuda()) {
    PoolPlan plan;
    plan.quotas.push_back({Device::Cpu(), settings.max_instances});
    return plan;
  }
  std::vector<DeviceRoom> rooms;
  for (size_t i = 0; i < devices.size(); ++i) {
    MODELPOOL_ASSIGN_OR_RETURN(const GpuInfo gpu, inventory.Gpu(devices[i].index));
    DeviceRoom r;
    r.device = devices[i];
    r.room_bytes = gpu.free_bytes - settings.vram_safety_margin_bytes;
    r.capacity_bytes = r.room_bytes;
    r.placed = placed.empty() ? 0 : placed[i];
    r.footprint = {0, instance_bytes};
    r.reading = absl::StrCat(devices[i].ToString(), " has ", FormatBytes(gpu.free_bytes),
                             " free with a safety margin of ",
                             FormatBytes(settings.vram_safety_margin_bytes));
    rooms.push_back(std::move(r));
  }
  return PlanPool(model_name, settings.max_instances, rooms);
}

}  // namespace modelpool
