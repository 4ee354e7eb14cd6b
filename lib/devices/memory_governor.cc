#include "modelpool/devices/memory_governor.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "lib/devices/memory_governor_impl.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {

using devices_internal::FootprintKey;
using devices_internal::MeasuredFootprint;
using devices_internal::MeasuredFootprints;

namespace {

// How fast a use stops counting in the eviction order.
constexpr absl::Duration kUsesHalfLife = absl::Minutes(10);

const char* KindOf(const Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }

int64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return int64_t{8} << 30;
  return static_cast<int64_t>(pages) * page_size;
}

int64_t Times(int64_t bytes, double factor) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(bytes) * factor));
}

MemoryFootprint Scaled(MemoryFootprint footprint, double factor) {
  return {Times(std::max<int64_t>(0, footprint.shared_bytes), factor),
          Times(std::max<int64_t>(1, footprint.instance_bytes), factor)};
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

absl::StatusOr<MemoryGovernor::Impl::Reserved> MemoryGovernor::Impl::Reserve(
    const std::shared_ptr<State>& state, const Device& device, const ReserveOptions& options) {
  MODELPOOL_RETURN_IF_ERROR(EnsureDevice(device));
  {
    MutexLock lock(&mu_);
    DeviceState* d = FindDevice(device);
    if (!mu_.AwaitWithDeadline([d]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return !d->loading; },
                               options.deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("cannot load ", state->model, " on ", device.ToString(),
                       ": another load there did not finish in time"));
    }
    d->loading = true;
  }
  Reserved reserved;
  const absl::Status status = ReserveWithSlot(state, device, options, &reserved);
  if (!status.ok()) {
    FreeSlot(device);
    return status;
  }
  return reserved;
}

// Evicts until the load fits the budget and the driver's free memory, then takes the room.
absl::Status MemoryGovernor::Impl::ReserveWithSlot(const std::shared_ptr<State>& state,
                                                   const Device& device,
                                                   const ReserveOptions& options,
                                                   Reserved* reserved) {
  const int64_t margin = options_.settings.vram_safety_margin_bytes;
  const absl::Time wait_until = std::min(options.deadline, absl::Now() + options_.release_timeout);
  bool caches_released = false, evicted = false;
  absl::Duration pause = absl::Milliseconds(1);
  for (;;) {
    const int64_t device_free = DeviceFree(device);
    int64_t need = 0, budget_room = 0, budget = 0;
    {
      MutexLock lock(&mu_);
      const DeviceState* d = FindDevice(device);
      need = NextLocked(*state, device);
      budget = d->budget;
      budget_room = d->budget - d->used;
    }
    if (need > budget) {
      return absl::ResourceExhaustedError(
          absl::StrCat(state->model, " needs ", FormatBytes(need), " on ", device.ToString(),
                       ", more than its whole budget of ", FormatBytes(budget)));
    }
    const int64_t device_room = device_free < 0 ? budget_room : device_free - margin;
    if (need <= std::min(budget_room, device_room)) {
      MutexLock lock(&mu_);
      DeviceState* d = FindDevice(device);
      d->used += need;
      d->peak = std::max(d->peak, d->used);
      d->measuring = true;
      d->released_during_load = 0;
      const OnDevice* on = FindOn(*state, device);
      *reserved = {need, on == nullptr || on->instances == 0, device_free};
      return absl::OkStatus();
    }
    if (Evict(device, options, Victims(*state, device))) {
      evicted = true;
      pause = absl::Milliseconds(1);
      continue;
    }
    const std::string loaded = Describe(device);
    if (need > budget_room) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot load ", state->model, " on ", device.ToString(), ": it needs ",
                       FormatBytes(need), ", ", FormatBytes(budget_room),
                       " of the budget is free, and nothing there may be evicted (leased or "
                       "wanted); loaded: ",
                       loaded));
    }
    // The budget has room but the driver does not show it: blocks still cached, memory that
    // what this load evicted has not given back yet (worth a wait), or another process's.
    if (!caches_released) {
      ReleaseCaches(device);
      caches_released = true;
      continue;
    }
    if (!evicted || absl::Now() >= wait_until) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot load ", state->model, " on ", device.ToString(), ": it needs ",
                       FormatBytes(need), " and the budget has room, but the device shows ",
                       FormatBytes(device_free), " free with a safety margin of ",
                       FormatBytes(margin), " (memory held outside modelpool?); loaded: ", loaded));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
}

std::vector<MemoryGovernor::Impl::Victim> MemoryGovernor::Impl::Victims(
    const State& state, const Device& device) const {
  std::vector<Victim> victims;
  // Dropped after the lock: the last reference to an account's state may be one of these, and
  // its destructor takes the lock.
  std::vector<std::shared_ptr<State>> skipped;
  {
    MutexLock lock(&mu_);
    for (const auto& [key, record] : records_) {
      if (key == &state || record.owner == nullptr) continue;
      std::shared_ptr<State> other = record.state.lock();
      const OnDevice* on = FindOn(*key, device);
      if (other == nullptr || on == nullptr || on->instances == 0) {
        skipped.push_back(std::move(other));
        continue;
      }
      EvictionCandidate c;
      c.model = other->model;
      c.device = device;
      c.account = other.get();
      c.loaded = on->instances;
      c.last_used = on->last_used;
      c.recent_uses = on->recent_uses;
      c.bytes = on->last_instance_bytes + (on->instances == 1 ? on->shared_charged : 0);
      victims.push_back({std::move(other), record.owner, std::move(c)});
    }
  }
  for (Victim& v : victims) v.candidate.idle = v.owner->IdleInstances(device);
  return victims;
}

bool MemoryGovernor::Impl::Evict(const Device& device, const ReserveOptions& options,
                                 std::vector<Victim> victims) {
  const absl::Time now = clock_->Now();
  std::vector<std::pair<double, Victim*>> order;
  for (Victim& v : victims) {
    if (v.candidate.idle <= 0) continue;
    if (options.may_evict && !options.may_evict(v.candidate)) continue;
    const double score = options.eviction_score ? options.eviction_score(v.candidate, now)
                                                : LruWeightedScore(v.candidate, now);
    order.emplace_back(score, &v);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [score, v] : order) {
    if (!v->owner->DestroyIdleInstance(device)) continue;  // leased since it was counted
    v->owner->ReleaseCachedMemory(device);
    {
      MutexLock lock(&mu_);
      ++FindDevice(device)->evictions;
      ++On(*v->state, device).evictions;
    }
    Log(LogSeverity::kDebug, absl::StrCat("evicted an idle instance of ", v->candidate.model,
                                          " from ", device.ToString()));
    return true;
  }
  return false;
}

void MemoryGovernor::Impl::ReleaseCaches(const Device& device) const {
  std::vector<std::shared_ptr<Owner>> owners;
  {
    MutexLock lock(&mu_);
    for (const auto& [key, record] : records_) {
      if (record.owner != nullptr) owners.push_back(record.owner);
    }
  }
  for (const auto& owner : owners) owner->ReleaseCachedMemory(device);
}

void MemoryGovernor::Impl::FreeSlot(const Device& device) {
  MutexLock lock(&mu_);
  DeviceState* d = FindDevice(device);
  if (d == nullptr) return;
  d->loading = false;
  d->measuring = false;
}

int64_t MemoryGovernor::Impl::Commit(const State& state, const Device& device,
                                     const Reserved& reserved) {
  const int64_t device_free_after = reserved.device_free_before >= 0 ? DeviceFree(device) : -1;
  bool measured_now = false;
  int64_t charged = 0, measured = -1;
  {
    MutexLock lock(&mu_);
    DeviceState* d = FindDevice(device);
    d->used -= reserved.bytes;
    if (device_free_after >= 0) {
      measured = reserved.device_free_before - device_free_after + d->released_during_load;
    }
    d->loading = false;
    d->measuring = false;
    if (measured > 0) {
      const std::string variant = state.VariantOn(device);
      MeasuredFootprint& m = measured_[FootprintKey(state.model, variant, KindOf(device))];
      m.model = state.model;
      m.variant = variant;
      m.device_kind = KindOf(device);
      (reserved.first_on_device ? m.first_instance_bytes : m.instance_bytes) = measured;
      measured_now = true;
    }
    const MemoryFootprint footprint = FootprintLocked(state, device);
    OnDevice& on = On(state, device);
    int64_t shared = 0;
    if (on.instances == 0) {
      shared = footprint.shared_bytes;
      on.shared_charged = shared;
    }
    charged = measured > 0 ? measured - shared : footprint.instance_bytes;
    charged = std::max<int64_t>(0, charged);
    ++on.instances;
    on.charged_bytes += shared + charged;
    on.last_instance_bytes = charged;
    on.measured = on.measured || measured > 0;
    TouchLocked(on);
    d->used += shared + charged;
    d->peak = std::max(d->peak, d->used);
    ++d->loads;
  }
  if (measured_now) {
    Log(LogSeverity::kInfo,
        absl::StrCat(state.model, ": ", reserved.first_on_device ? "a first" : "a further",
                     " instance on ", device.ToString(), " takes ", FormatBytes(measured),
                     " (measured)"));
    Persist();
  } else if (device_free_after >= 0) {
    Log(LogSeverity::kWarning, absl::StrCat(state.model, ": free memory on ", device.ToString(),
                                            " did not drop while loading; keeping the estimate of ",
                                            FormatBytes(reserved.bytes)));
  }
  return charged;
}

void MemoryGovernor::Impl::Abandon(const Device& device, int64_t bytes) {
  MutexLock lock(&mu_);
  DeviceState* d = FindDevice(device);
  d->used -= bytes;
  d->loading = false;
  d->measuring = false;
}

void MemoryGovernor::Impl::Release(const State& state, const Device& device, int64_t bytes) {
  {
    MutexLock lock(&mu_);
    DeviceState* d = FindDevice(device);
    OnDevice& on = On(state, device);
    int64_t freed = bytes;
    on.instances = std::max(0, on.instances - 1);
    if (on.instances == 0) {
      freed += on.shared_charged;
      on.shared_charged = 0;
    }
    on.charged_bytes -= freed;
    d->used -= freed;
    if (d->measuring) d->released_during_load += freed;
  }
  listeners_.ForEach([](Listener& listener) { listener.OnMemoryReleased(); });
}

int MemoryGovernor::Impl::Unload(const State& state, const Device& device, int count) {
  std::shared_ptr<Owner> owner;
  int64_t used_before = 0;
  {
    MutexLock lock(&mu_);
    auto it = records_.find(&state);
    if (it != records_.end()) owner = it->second.owner;
    const DeviceState* d = FindDevice(device);
    if (owner == nullptr || d == nullptr) return 0;
    used_before = d->used;
  }
  const int64_t device_free_before = DeviceFree(device);
  int destroyed = 0;
  while (destroyed < count && owner->DestroyIdleInstance(device)) ++destroyed;
  if (destroyed == 0) return 0;
  owner->ReleaseCachedMemory(device);
  const int64_t device_free_after = DeviceFree(device);
  bool short_of_it = false;
  int64_t released = 0;
  {
    MutexLock lock(&mu_);
    DeviceState* d = FindDevice(device);
    d->unloads += static_cast<uint64_t>(destroyed);
    released = used_before - d->used;
    // Another load or unload on the device meanwhile would blur the comparison: check alone.
    short_of_it = !d->loading && device_free_before >= 0 && released > 0 &&
                  device_free_after - device_free_before < released / 2;
    if (short_of_it) ++d->unloads_not_freed;
  }
  if (short_of_it) {
    Log(LogSeverity::kWarning,
        absl::StrCat("unloading ", destroyed, " instance(s) of ", state.model, " released ",
                     FormatBytes(released), " but free memory on ", device.ToString(), " rose by ",
                     FormatBytes(device_free_after - device_free_before)));
  }
  return destroyed;
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

// MemoryGovernor

MemoryGovernor::MemoryGovernor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemoryGovernor::~MemoryGovernor() = default;

absl::StatusOr<std::shared_ptr<MemoryGovernor>> MemoryGovernor::Create(Options options) {
  MODELPOOL_RETURN_IF_ERROR(options.settings.Validate());
  if (!options.inventory) options.inventory = DeviceInventory::System();
  MeasuredFootprints measured;
  if (!options.settings.footprint_file.empty()) {
    absl::StatusOr<MeasuredFootprints> read =
        devices_internal::ReadFootprints(options.settings.footprint_file);
    if (read.ok()) {
      measured = *std::move(read);
    } else {
      Log(LogSeverity::kWarning,
          absl::StrCat("ignoring the footprint file: ", read.status().message()));
    }
  }
  return std::shared_ptr<MemoryGovernor>(
      new MemoryGovernor(std::make_shared<Impl>(std::move(options), std::move(measured))));
}

absl::StatusOr<std::shared_ptr<MemoryGovernor>> MemoryGovernor::Shared(
    const std::shared_ptr<DeviceInventory>& inventory, const Settings& settings) {
  static Mutex* const mu = new Mutex();
  static auto* const governors =
      new std::vector<std::pair<const DeviceInventory*, std::weak_ptr<MemoryGovernor>>>();
  MutexLock lock(mu);
  governors->erase(std::remove_if(governors->begin(), governors->end(),
                                  [](const auto& entry) { return entry.second.expired(); }),
                   governors->end());
  for (const auto& [key, governor] : *governors) {
    if (key == inventory.get()) {
      if (std::shared_ptr<MemoryGovernor> shared = governor.lock()) return shared;
    }
  }
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<MemoryGovernor> governor,
                             Create({.settings = settings, .inventory = inventory}));
  governors->emplace_back(inventory.get(), governor);
  return governor;
}

std::unique_ptr<MemoryGovernor::Account> MemoryGovernor::Register(AccountOptions options) {
  auto state = std::make_shared<Account::State>();
  state->governor = impl_;
  state->model = options.model;
  const double factor = impl_->options().settings.footprint_estimate_factor;
  const Device gpu = Device::Cuda(0), cpu = Device::Cpu();
  const MemoryFootprint none{0, 1};
  state->estimate_gpu = Scaled(options.estimate ? options.estimate(gpu) : none, factor);
  state->estimate_cpu = Scaled(options.estimate ? options.estimate(cpu) : none, factor);
  state->variant_gpu = options.variant ? options.variant(gpu) : "";
  state->variant_cpu = options.variant ? options.variant(cpu) : "";
  impl_->Open(state, std::move(options.owner));
  return std::unique_ptr<Account>(new Account(std::move(state)));
}

absl::StatusOr<MemoryGovernor::Reservation> MemoryGovernor::Reserve(Account& account,
                                                                    const Device& device,
                                                                    const ReserveOptions& options) {
  MODELPOOL_ASSIGN_OR_RETURN(const Impl::Reserved reserved,
                             impl_->Reserve(account.state_, device, options));
  Reservation reservation;
  reservation.account_ = account.state_;
  reservation.device_ = device;
  reservation.bytes_ = reserved.bytes;
  reservation.first_on_device_ = reserved.first_on_device;
  reservation.device_free_before_ = reserved.device_free_before;
  return reservation;
}

int MemoryGovernor::Unload(Account& account, const Device& device, int count) {
  return impl_->Unload(*account.state_, device, count);
}

int64_t MemoryGovernor::NextInstanceBytes(const Account& account, const Device& device) const {
  return impl_->NextInstanceBytes(*account.state_, device);
}
MemoryFootprint MemoryGovernor::FootprintOf(const Account& account, const Device& device) const {
  return impl_->Footprint(*account.state_, device);
}
bool MemoryGovernor::Measured(const Account& account) const {
  return impl_->Measured(*account.state_);
}
int64_t MemoryGovernor::BudgetBytes(const Device& device) const { return impl_->Budget(device); }
int64_t MemoryGovernor::RoomBytes(const Device& device) const { return impl_->Room(device); }
int64_t MemoryGovernor::CapacityBytes(const Device& device) const {
  return impl_->Capacity(device);
}
std::string MemoryGovernor::Describe(const Device& device) const { return impl_->Describe(device); }
std::vector<DeviceMemoryStats> MemoryGovernor::Stats() const { return impl_->Stats(); }
void MemoryGovernor::AddListener(Listener* listener) { impl_->listeners().Add(listener); }
void MemoryGovernor::RemoveListener(Listener* listener) { impl_->listeners().Remove(listener); }
const Settings& MemoryGovernor::settings() const { return impl_->options().settings; }
Clock& MemoryGovernor::clock() const { return impl_->clock(); }

double MemoryGovernor::LruWeightedScore(const EvictionCandidate& candidate, absl::Time now) {
  const double idle_seconds = candidate.last_used == absl::InfinitePast()
                                  ? 1e9
                                  : std::max(0.0, absl::ToDoubleSeconds(now - candidate.last_used));
  return idle_seconds / (1.0 + candidate.recent_uses);
}

// MemoryGovernor::Account

MemoryGovernor::Account::~Account() { state_->governor->Detach(*state_); }
const std::string& MemoryGovernor::Account::model() const { return state_->model; }
const void* MemoryGovernor::Account::id() const { return state_.get(); }
void MemoryGovernor::Account::Touch(const Device& device) {
  state_->governor->Touch(*state_, device);
}
int MemoryGovernor::Account::Instances(const Device& device) const {
  return state_->governor->Instances(*state_, device);
}
uint64_t MemoryGovernor::Account::Evictions() const { return state_->governor->Evictions(*state_); }

// MemoryGovernor::InstanceMemory

MemoryGovernor::InstanceMemory::InstanceMemory(InstanceMemory&& other) noexcept
    : account_(std::move(other.account_)), device_(other.device_), bytes_(other.bytes_) {}

MemoryGovernor::InstanceMemory& MemoryGovernor::InstanceMemory::operator=(
    InstanceMemory&& other) noexcept {
  if (this != &other) {
    Release();
    account_ = std::move(other.account_);
    device_ = other.device_;
    bytes_ = other.bytes_;
  }
  return *this;
}

MemoryGovernor::InstanceMemory::~InstanceMemory() { Release(); }

void MemoryGovernor::InstanceMemory::Release() noexcept {
  if (account_ == nullptr) return;
  std::shared_ptr<Account::State> account = std::move(account_);
  account->governor->Release(*account, device_, bytes_);
}

// MemoryGovernor::Reservation

MemoryGovernor::Reservation::Reservation(Reservation&& other) noexcept
    : account_(std::move(other.account_)),
      device_(other.device_),
      bytes_(other.bytes_),
      first_on_device_(other.first_on_device_),
      device_free_before_(other.device_free_before_) {}

MemoryGovernor::Reservation& MemoryGovernor::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Abandon();
    account_ = std::move(other.account_);
    device_ = other.device_;
    bytes_ = other.bytes_;
    first_on_device_ = other.first_on_device_;
    device_free_before_ = other.device_free_before_;
  }
  return *this;
}

MemoryGovernor::Reservation::~Reservation() { Abandon(); }

void MemoryGovernor::Reservation::Abandon() noexcept {
  if (account_ == nullptr) return;
  std::shared_ptr<Account::State> account = std::move(account_);
  account->governor->Abandon(device_, bytes_);
}

MemoryGovernor::InstanceMemory MemoryGovernor::Reservation::Commit() {
  if (account_ == nullptr) return InstanceMemory();
  std::shared_ptr<Account::State> account = std::move(account_);
  const int64_t charged =
      account->governor->Commit(*account, device_, {bytes_, first_on_device_, device_free_before_});
  return InstanceMemory(std::move(account), device_, charged);
}

}  // namespace modelpool
