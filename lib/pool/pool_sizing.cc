#include "modelpool/pool/pool_sizing.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

std::string FormatBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (int64_t{1} << 30) || bytes <= -(int64_t{1} << 30)) {
    return absl::StrFormat("%.2f GiB", b / (1 << 30));
  }
  return absl::StrFormat("%.2f MiB", b / (1 << 20));
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
  const int gpus = inventory.GpuCount();
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
  PoolPlan plan;
  if (!devices.front().is_cuda()) {
    plan.quotas.push_back({Device::Cpu(), settings.max_instances});
    return plan;
  }
  // Room on each GPU, counting the instances it already holds.
  std::vector<int> room(devices.size(), 0);
  std::vector<std::string> readings;
  for (size_t i = 0; i < devices.size(); ++i) {
    MODELPOOL_ASSIGN_OR_RETURN(const GpuInfo gpu, inventory.Gpu(devices[i].index));
    const int64_t usable = gpu.free_bytes - settings.vram_safety_margin_bytes;
    const int64_t fits = usable > 0 ? usable / instance_bytes : 0;
    room[i] = static_cast<int>(std::min<int64_t>(fits, 1 << 20)) + (placed.empty() ? 0 : placed[i]);
    readings.push_back(
        absl::StrCat(devices[i].ToString(), " has ", FormatBytes(gpu.free_bytes), " free"));
  }
  // Deal instances out one device at a time, so the cap spreads them evenly.
  std::vector<int> quota(devices.size(), 0);
  int assigned = 0;
  for (bool progress = true; progress && assigned < settings.max_instances;) {
    progress = false;
    for (size_t i = 0; i < devices.size() && assigned < settings.max_instances; ++i) {
      if (quota[i] < room[i]) {
        ++quota[i];
        ++assigned;
        progress = true;
      }
    }
  }
  if (assigned == 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat(model_name, " needs ", FormatBytes(instance_bytes), " per instance plus a ",
                     FormatBytes(settings.vram_safety_margin_bytes), " safety margin, but ",
                     absl::StrJoin(readings, ", ")));
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (quota[i] > 0) plan.quotas.push_back({devices[i], quota[i]});
  }
  return plan;
}

}  // namespace modelpool
