// The governor's state: devices and their budgets, accounts, footprints, statistics.
#include "lib/devices/memory_governor_impl.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {

using devices_internal::FootprintKey;
using devices_internal::KindOf;
using devices_internal::MeasuredFootprint;
using devices_internal::MeasuredFootprints;
using devices_internal::Times;

namespace {

// How fast a use stops counting in the eviction order.
constexpr absl::Duration kUsesHalfLife = absl::Minutes(10);

int64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return int64_t{8} << 30;
  return static_cast<int64_t>(pages) * page_size;
}

}  // namespace

MemoryGovernor::Account::State::~State() { governor->Forget(*this); }

MemoryGovernor::Impl::Impl(Options options, MeasuredFootprints measured)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &Clock::Real()),
      measured_(std::move(measured)) {}

void MemoryGovernor::Impl::Open(const std::shared_ptr<State>& state, std::shared_ptr<Owner> owner) {
  MutexLock lock(&mu_);
  Record& record = records_[state.get()];
  record.state = state;
  record.owner = std::move(owner);
}

void MemoryGovernor::Impl::Detach(const State& state) {
  std::shared_ptr<Owner> owner;
  {
    MutexLock lock(&mu_);
    auto it = records_.find(&state);
    if (it != records_.end()) owner = std::move(it->second.owner);
  }
}

void MemoryGovernor::Impl::Forget(const State& state) {
  MutexLock lock(&mu_);
  records_.erase(&state);
}

absl::StatusOr<int64_t> MemoryGovernor::Impl::ComputeBudget(const Device& device) const {
  const Settings& s = options_.settings;
  if (!device.is_cuda()) {
    if (s.cpu_memory_budget_bytes > 0) return s.cpu_memory_budget_bytes;
    return Times(PhysicalMemoryBytes(), s.memory_threshold);
  }
  MODELPOOL_ASSIGN_OR_RETURN(const GpuInfo gpu, options_.inventory->Gpu(device.index));
  int64_t budget = std::min(Times(gpu.total_bytes, s.memory_threshold),
                            gpu.total_bytes - s.vram_safety_margin_bytes);
  if (s.gpu_memory_budget_bytes > 0) budget = std::min(budget, s.gpu_memory_budget_bytes);
  return std::max<int64_t>(0, budget);
}

absl::Status MemoryGovernor::Impl::EnsureDevice(const Device& device) {
  {
    MutexLock lock(&mu_);
    if (FindDevice(device) != nullptr) return absl::OkStatus();
  }
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t budget, ComputeBudget(device));
  MutexLock lock(&mu_);
  if (FindDevice(device) == nullptr) {
    auto state = std::make_unique<DeviceState>();
    state->device = device;
    state->budget = budget;
    devices_.push_back(std::move(state));
  }
  return absl::OkStatus();
}

MemoryGovernor::Impl::DeviceState* MemoryGovernor::Impl::FindDevice(const Device& device) {
  for (auto& d : devices_) {
    if (d->device == device) return d.get();
  }
  return nullptr;
}

const MemoryGovernor::Impl::DeviceState* MemoryGovernor::Impl::FindDevice(
    const Device& device) const {
  for (const auto& d : devices_) {
    if (d->device == device) return d.get();
  }
  return nullptr;
}

int64_t MemoryGovernor::Impl::DeviceFree(const Device& device) const {
  if (!device.is_cuda()) return -1;
  absl::StatusOr<GpuInfo> gpu = options_.inventory->Gpu(device.index);
  return gpu.ok() ? gpu->free_bytes : -1;
}

MemoryGovernor::Impl::OnDevice& MemoryGovernor::Impl::On(const State& state, const Device& device) {
  Record& record = records_[&state];
  for (OnDevice& on : record.devices) {
    if (on.device == device) return on;
  }
  record.devices.push_back(OnDevice{.device = device});
  return record.devices.back();
}

const MemoryGovernor::Impl::OnDevice* MemoryGovernor::Impl::FindOn(const State& state,
                                                                   const Device& device) const {
  auto it = records_.find(&state);
  if (it == records_.end()) return nullptr;
  for (const OnDevice& on : it->second.devices) {
    if (on.device == device) return &on;
  }
  return nullptr;
}

MemoryFootprint MemoryGovernor::Impl::FootprintLocked(const State& state,
                                                      const Device& device) const {
  const MemoryFootprint& estimate = state.EstimateOn(device);
  auto it = measured_.find(FootprintKey(state.model, state.VariantOn(device), KindOf(device)));
  if (it == measured_.end()) return estimate;
  const MeasuredFootprint& m = it->second;
  if (m.first_instance_bytes > 0 && m.instance_bytes > 0) {
    return {std::max<int64_t>(0, m.first_instance_bytes - m.instance_bytes), m.instance_bytes};
  }
  if (m.first_instance_bytes > 0) {
    // Only a first instance has been measured: split it as the estimate splits.
    const double shared_share = static_cast<double>(estimate.shared_bytes) /
                                static_cast<double>(estimate.first_instance_bytes());
    const int64_t shared = std::llround(static_cast<double>(m.first_instance_bytes) * shared_share);
    return {shared, m.first_instance_bytes - shared};
  }
  if (m.instance_bytes > 0) return {estimate.shared_bytes, m.instance_bytes};
  return estimate;
}

int64_t MemoryGovernor::Impl::NextLocked(const State& state, const Device& device) const {
  const MemoryFootprint footprint = FootprintLocked(state, device);
  const OnDevice* on = FindOn(state, device);
  const bool present = on != nullptr && on->instances > 0;
  return (present ? 0 : footprint.shared_bytes) + footprint.instance_bytes;
}

void MemoryGovernor::Impl::TouchLocked(OnDevice& on) {
  const absl::Time now = clock_->Now();
  if (on.last_used != absl::InfinitePast() && now > on.last_used) {
    on.recent_uses *= std::exp2(-absl::FDivDuration(now - on.last_used, kUsesHalfLife));
  }
  on.recent_uses += 1;
  on.last_used = std::max(on.last_used, now);
}

void MemoryGovernor::Impl::Touch(const State& state, const Device& device) {
  MutexLock lock(&mu_);
  TouchLocked(On(state, device));
}

uint64_t MemoryGovernor::Impl::Evictions(const State& state) const {
  MutexLock lock(&mu_);
  auto it = records_.find(&state);
  if (it == records_.end()) return 0;
  uint64_t evictions = 0;
  for (const OnDevice& on : it->second.devices) evictions += on.evictions;
  return evictions;
}

int MemoryGovernor::Impl::Instances(const State& state, const Device& device) const {
  MutexLock lock(&mu_);
  const OnDevice* on = FindOn(state, device);
  return on == nullptr ? 0 : on->instances;
}

MemoryFootprint MemoryGovernor::Impl::Footprint(const State& state, const Device& device) const {
  MutexLock lock(&mu_);
  return FootprintLocked(state, device);
}

int64_t MemoryGovernor::Impl::NextInstanceBytes(const State& state, const Device& device) const {
  MutexLock lock(&mu_);
  return NextLocked(state, device);
}

bool MemoryGovernor::Impl::Measured(const State& state) const {
  MutexLock lock(&mu_);
  auto it = measured_.find(FootprintKey(state.model, state.variant_gpu, "cuda"));
  return it != measured_.end() && it->second.first_instance_bytes > 0;
}

int64_t MemoryGovernor::Impl::Budget(const Device& device) {
  if (!EnsureDevice(device).ok()) return 0;
  MutexLock lock(&mu_);
  return FindDevice(device)->budget;
}

int64_t MemoryGovernor::Impl::Room(const Device& device) {
  if (!EnsureDevice(device).ok()) return 0;
  const int64_t device_free = DeviceFree(device);
  MutexLock lock(&mu_);
  const DeviceState* d = FindDevice(device);
  const int64_t budget_room = d->budget - d->used;
  if (device_free < 0) return std::max<int64_t>(0, budget_room);
  return std::max<int64_t>(
      0, std::min(budget_room, device_free - options_.settings.vram_safety_margin_bytes));
}

int64_t MemoryGovernor::Impl::Capacity(const Device& device) {
  if (!EnsureDevice(device).ok()) return 0;
  const int64_t device_free = DeviceFree(device);
  MutexLock lock(&mu_);
  const DeviceState* d = FindDevice(device);
  if (device_free < 0) return d->budget;
  // What is loaded here may be evicted; what the driver lacks beyond that is another process's.
  return std::max<int64_t>(
      0, std::min(d->budget, device_free + d->used - options_.settings.vram_safety_margin_bytes));
}

std::string MemoryGovernor::Impl::DescribeLocked(const Device& device) const {
  std::vector<std::string> parts;
  for (const auto& [key, record] : records_) {
    const OnDevice* on = FindOn(*key, device);
    if (on == nullptr || on->instances == 0) continue;
    parts.push_back(
        absl::StrCat(key->model, " x", on->instances, " (", FormatBytes(on->charged_bytes), ")"));
  }
  const DeviceState* d = FindDevice(device);
  return absl::StrCat(
      device.ToString(), ": ", parts.empty() ? "nothing" : absl::StrJoin(parts, ", "),
      d == nullptr
          ? ""
          : absl::StrCat("; ", FormatBytes(d->used), " of ", FormatBytes(d->budget), " used"));
}

std::string MemoryGovernor::Impl::Describe(const Device& device) const {
  MutexLock lock(&mu_);
  return DescribeLocked(device);
}

std::vector<DeviceMemoryStats> MemoryGovernor::Impl::Stats() const {
  std::vector<Device> devices;
  {
    MutexLock lock(&mu_);
    for (const auto& d : devices_) devices.push_back(d->device);
  }
  std::vector<int64_t> readings;
  for (const Device& device : devices) readings.push_back(DeviceFree(device));
  MutexLock lock(&mu_);
  std::vector<DeviceMemoryStats> stats;
  for (size_t i = 0; i < devices.size(); ++i) {
    const DeviceState* d = FindDevice(devices[i]);
    DeviceMemoryStats s;
    s.device = d->device;
    s.budget_bytes = d->budget;
    s.used_bytes = d->used;
    s.peak_used_bytes = d->peak;
    s.free_bytes = d->budget - d->used;
    s.device_free_bytes = readings[i];
    s.loading = d->loading;
    s.loads = d->loads;
    s.evictions = d->evictions;
    s.unloads = d->unloads;
    s.unloads_not_freed = d->unloads_not_freed;
    for (const auto& [key, record] : records_) {
      const OnDevice* on = FindOn(*key, d->device);
      if (on == nullptr || on->instances == 0) continue;
      s.models.push_back({key->model, key, on->instances, on->shared_charged,
                          on->last_instance_bytes, on->measured});
    }
    stats.push_back(std::move(s));
  }
  return stats;
}

void MemoryGovernor::Impl::Persist() {
  if (options_.settings.footprint_file.empty()) return;
  MutexLock file_lock(&file_mu_);
  MeasuredFootprints copy;
  {
    MutexLock lock(&mu_);
    copy = measured_;
  }
  const absl::Status written =
      devices_internal::WriteFootprints(options_.settings.footprint_file, copy);
  if (!written.ok()) {
    Log(LogSeverity::kWarning, absl::StrCat("footprint_file: ", written.message()));
  }
}

}  // namespace modelpool
