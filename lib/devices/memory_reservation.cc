// Reservations: room for a load, made by evicting idle instances if needed, and what a load
// and an unload do to the accounts. See Note [Governor locking].
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/devices/memory_governor_impl.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {

using devices_internal::FootprintKey;
using devices_internal::KindOf;
using devices_internal::MeasuredFootprint;

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

}  // namespace modelpool
