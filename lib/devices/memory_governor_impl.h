#ifndef MODELPOOL_LIB_DEVICES_MEMORY_GOVERNOR_IMPL_H_
#define MODELPOOL_LIB_DEVICES_MEMORY_GOVERNOR_IMPL_H_

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/devices/footprint_store.h"
#include "modelpool/base/internal/listener_set.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/memory_governor.h"

namespace modelpool {
namespace devices_internal {

// "cuda" or "cpu": the device kind measurements are kept under.
inline const char* KindOf(const Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }

// `bytes` times `factor`, rounded up.
inline int64_t Times(int64_t bytes, double factor) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(bytes) * factor));
}

}  // namespace devices_internal

// An account's identity and what it said about itself when it opened; immutable but for the
// governor's record of it (see `MemoryGovernor::Impl::Record`).
struct MemoryGovernor::Account::State {
  std::shared_ptr<MemoryGovernor::Impl> governor;
  std::string model;
  MemoryFootprint estimate_gpu, estimate_cpu;  // already times the estimate factor
  std::string variant_gpu, variant_cpu;

  ~State();
  const MemoryFootprint& EstimateOn(const Device& device) const {
    return device.is_cuda() ? estimate_gpu : estimate_cpu;
  }
  const std::string& VariantOn(const Device& device) const {
    return device.is_cuda() ? variant_gpu : variant_cpu;
  }
};

// Note [Governor locking]
// One mutex guards the devices, the accounts' records and the measurements. Owners (managers)
// and listeners are called without it: an owner destroys instances, and destroying an instance
// releases its memory here. The driver is read without it too. Loads on one device run one at a
// time (`DeviceState::loading`), so a load's measurement is not mixed with another's.
class MemoryGovernor::Impl {
 public:
  using State = MemoryGovernor::Account::State;

  Impl(Options options, devices_internal::MeasuredFootprints measured);

  void Open(const std::shared_ptr<State>& state, std::shared_ptr<Owner> owner)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Detach(const State& state) ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(const State& state) ABSL_LOCKS_EXCLUDED(mu_);

  struct Reserved {
    int64_t bytes = 0;
    bool first_on_device = false;
    int64_t device_free_before = -1;
  };
  absl::StatusOr<Reserved> Reserve(const std::shared_ptr<State>& state, const Device& device,
                                   const ReserveOptions& options) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the bytes the instance is charged with (its shared bytes, if first, are charged to
  // the account's presence on the device).
  int64_t Commit(const State& state, const Device& device, const Reserved& reserved)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Abandon(const Device& device, int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(const State& state, const Device& device, int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  int Unload(const State& state, const Device& device, int count) ABSL_LOCKS_EXCLUDED(mu_);
  void Touch(const State& state, const Device& device) ABSL_LOCKS_EXCLUDED(mu_);

  int Instances(const State& state, const Device& device) const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t Evictions(const State& state) const ABSL_LOCKS_EXCLUDED(mu_);
  MemoryFootprint Footprint(const State& state, const Device& device) const
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t NextInstanceBytes(const State& state, const Device& device) const
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Measured(const State& state) const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Budget(const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Room(const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Capacity(const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  std::string Describe(const Device& device) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<DeviceMemoryStats> Stats() const ABSL_LOCKS_EXCLUDED(mu_);

  const Options& options() const { return options_; }
  Clock& clock() const { return *clock_; }
  base_internal::ListenerSet<Listener>& listeners() { return listeners_; }

 private:
  struct OnDevice {
    Device device;
    int instances = 0;
    int64_t shared_charged = 0;  // while instances > 0
    int64_t charged_bytes = 0;   // shared plus every instance's
    int64_t last_instance_bytes = 0;
    bool measured = false;
    absl::Time last_used = absl::InfinitePast();
    double recent_uses = 0;
    uint64_t evictions = 0;
  };
  struct Record {
    std::weak_ptr<State> state;
    std::shared_ptr<Owner> owner;
    std::vector<OnDevice> devices;
  };
  struct DeviceState {
    Device device;
    int64_t budget = 0;
    int64_t used = 0;
    int64_t peak = 0;
    bool loading = false;
    bool measuring = false;
    int64_t released_during_load = 0;
    uint64_t loads = 0, evictions = 0, unloads = 0, unloads_not_freed = 0;
  };
  // An idle instance a load may evict, with what it takes to evict it.
  struct Victim {
    std::shared_ptr<State> state;
    std::shared_ptr<Owner> owner;
    EvictionCandidate candidate;
  };

  absl::Status EnsureDevice(const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<int64_t> ComputeBudget(const Device& device) const;
  // The driver's free bytes on a GPU, -1 on the CPU or when it cannot be read.
  int64_t DeviceFree(const Device& device) const;
  absl::Status ReserveWithSlot(const std::shared_ptr<State>& state, const Device& device,
                               const ReserveOptions& options, Reserved* reserved)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Victim> Victims(const State& state, const Device& device) const
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Evict(const Device& device, const ReserveOptions& options, std::vector<Victim> victims)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseCaches(const Device& device) const ABSL_LOCKS_EXCLUDED(mu_);
  void FreeSlot(const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  void Persist() ABSL_LOCKS_EXCLUDED(mu_, file_mu_);

  DeviceState* FindDevice(const Device& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const DeviceState* FindDevice(const Device& device) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  OnDevice& On(const State& state, const Device& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const OnDevice* FindOn(const State& state, const Device& device) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MemoryFootprint FootprintLocked(const State& state, const Device& device) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NextLocked(const State& state, const Device& device) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeLocked(const Device& device) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TouchLocked(OnDevice& on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock* const clock_;

  mutable Mutex mu_;
  std::vector<std::unique_ptr<DeviceState>> devices_ ABSL_GUARDED_BY(mu_);
  std::map<const State*, Record> records_ ABSL_GUARDED_BY(mu_);
  devices_internal::MeasuredFootprints measured_ ABSL_GUARDED_BY(mu_);
  Mutex file_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one writer of the footprint file at a time
  base_internal::ListenerSet<Listener> listeners_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_DEVICES_MEMORY_GOVERNOR_IMPL_H_
