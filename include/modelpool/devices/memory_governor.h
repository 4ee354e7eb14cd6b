#ifndef MODELPOOL_DEVICES_MEMORY_GOVERNOR_H_
#define MODELPOOL_DEVICES_MEMORY_GOVERNOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/devices/device_inventory.h"

namespace modelpool {

// The memory of a model's instances on one device.
struct MemoryFootprint {
  // Paid once per device while any instance of the model is loaded there: its read-only
  // weights, which the instances on one device share.
  int64_t shared_bytes = 0;
  // Paid by every instance: its own workspace.
  int64_t instance_bytes = 0;

  // What the first instance on a device takes.
  int64_t first_instance_bytes() const { return shared_bytes + instance_bytes; }
};

// An idle instance that a load could evict, as the eviction order sees it.
struct EvictionCandidate {
  std::string model;
  Device device;
  // The account (one per manager) it belongs to; compare with `MemoryGovernor::Account::id()`.
  const void* account = nullptr;
  int idle = 0;    // instances of the model on the device that nobody leases
  int loaded = 0;  // all its instances there
  absl::Time last_used;
  // Uses, each counted as 1 and halved every 10 minutes of the governor's clock since.
  double recent_uses = 0;
  // What evicting one frees: its instance bytes, and the shared bytes if it is the last one.
  int64_t bytes = 0;
};

// One device's budget and what is loaded there.
struct DeviceMemoryStats {
  struct Model {
    std::string model;
    const void* account = nullptr;  // as `EvictionCandidate::account`
    int instances = 0;
    int64_t shared_bytes = 0;    // charged once
    int64_t instance_bytes = 0;  // charged per instance (the last one loaded)
    bool measured = false;       // whether the figures come from a measurement
  };
  Device device;
  int64_t budget_bytes = 0;
  int64_t used_bytes = 0;  // loaded instances, plus the load in progress
  int64_t peak_used_bytes = 0;
  int64_t free_bytes = 0;          // budget_bytes - used_bytes
  int64_t device_free_bytes = -1;  // the driver's reading; -1 on the CPU
  bool loading = false;
  uint64_t loads = 0;
  uint64_t evictions = 0;
  uint64_t unloads = 0;
  // Unloads after which the device's free memory did not rise by half what they released.
  uint64_t unloads_not_freed = 0;
  std::vector<Model> models;
};

// MemoryGovernor
//
// The one place that knows what is loaded where. Every device has one budget, shared by every
// model: on a GPU `min(total * memory_threshold, total - vram_safety_margin)`, capped by
// `gpu_memory_budget_bytes`; on the CPU `cpu_memory_budget_bytes` (or physical memory times the
// threshold). Each manager registers an `Account` and takes the memory of each instance through
// a `Reservation` before loading it, so no two models plan into the same free memory.
//
// A model's footprint is its estimate times `footprint_estimate_factor` until a load on a GPU
// has been measured (free memory before and after; loads on one device run one at a time): the
// first instance on a device measures its shared bytes (weights) and its instance bytes together,
// a second one its instance bytes alone. Measurements are kept per model, dtype (the account's
// variant) and device kind, and in `footprint_file` when it is set.
//
// When a load does not fit, idle instances (which nobody leases) of other models are evicted, in
// the order the caller gives (by default least recently used, weighted by how often they are
// used), and the load waits until the driver shows the memory free. Leased instances are never
// evicted. Thread-safe.
class MemoryGovernor {
 public:
  struct Options {
    Settings settings;
    // Unset: `DeviceInventory::System()`.
    std::shared_ptr<DeviceInventory> inventory;
    // Unset: `Clock::Real()`. Must outlive the governor.
    Clock* clock = nullptr;
    // How long a load waits for evicted memory to show free in the driver's reading.
    absl::Duration release_timeout = absl::Seconds(10);
  };

  // What a manager does for the governor. Called without any lock of the governor held.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Destroys one instance on `device` that nobody leases; false if there is none.
    virtual bool DestroyIdleInstance(const Device& device) = 0;
    // How many instances on `device` nobody leases.
    virtual int IdleInstances(const Device& device) = 0;
    // Hands memory cached by the framework on `device` back to the driver (libtorch's caching
    // allocator keeps what freed tensors held).
    virtual void ReleaseCachedMemory(const Device& device) {}
  };

  // Hears that memory was released (an instance unloaded). Called with no lock of the governor
  // held, on the thread that released it.
  class Listener {
   public:
    virtual void OnMemoryReleased() = 0;

   protected:
    ~Listener() = default;
  };

  struct AccountOptions {
    std::string model;
    // What besides the model and the device kind changes an instance's size, such as its dtype;
    // part of the key its measurements are kept under. Unset: nothing.
    std::function<std::string(const Device&)> variant;
    // The model's own estimate for one instance on a device (before the estimate factor).
    std::function<MemoryFootprint(const Device&)> estimate;
    // Null: nothing of this account is ever evicted.
    std::shared_ptr<Owner> owner;
  };

  struct ReserveOptions {
    // Real time (`absl::Now()`) by which the device's load slot must be free and evicted memory
    // must show free. Past it the reservation fails.
    absl::Time deadline = absl::InfiniteFuture();
    // Which idle instances may be evicted. Unset: every idle instance of another account.
    std::function<bool(const EvictionCandidate&)> may_evict;
    // The eviction order: the highest score goes first. Unset: `LruWeightedScore`.
    std::function<double(const EvictionCandidate&, absl::Time now)> eviction_score;
  };

  class Account;
  class InstanceMemory;
  class Reservation;

  // MemoryGovernor::Create()
  //
  // `InvalidArgument` for settings that do not validate. A footprint file that cannot be read is
  // logged and ignored (measurements then start afresh).
  static absl::StatusOr<std::shared_ptr<MemoryGovernor>> Create(Options options);

  // MemoryGovernor::Shared()
  //
  // The governor that every manager and worker pool on `inventory` shares; the first caller's
  // settings make it (with the real clock), later callers get it as it is (a log line says so
  // when their memory settings differ).
  static absl::StatusOr<std::shared_ptr<MemoryGovernor>> Shared(
      const std::shared_ptr<DeviceInventory>& inventory, const Settings& settings);

  MemoryGovernor(const MemoryGovernor&) = delete;
  MemoryGovernor& operator=(const MemoryGovernor&) = delete;
  ~MemoryGovernor();

  // Opens an account for one model's instances. The account may be destroyed before the
  // memory of its instances is released; it then evicts nothing more.
  std::unique_ptr<Account> Register(AccountOptions options);

  // MemoryGovernor::Reserve()
  //
  // Room for one more instance of `account` on `device`, evicting idle instances if needed, once
  // the device's previous load has finished. Fails with `ResourceExhausted` naming what is
  // loaded when it cannot fit (the footprint exceeds the budget, or what is left is leased or may
  // not be evicted, or evicted memory did not show free), `DeadlineExceeded` when the device's
  // load slot stays taken past the deadline, `InvalidArgument` for a GPU the inventory lacks.
  absl::StatusOr<Reservation> Reserve(Account& account, const Device& device,
                                      const ReserveOptions& options);

  // MemoryGovernor::Unload()
  //
  // Destroys up to `count` idle instances of `account` on `device`, gives cached memory back and
  // checks that the driver shows it free (a shortfall is logged and counted). Returns how many.
  int Unload(Account& account, const Device& device, int count);

  // What a new instance of `account` would take on `device` now: its shared bytes if none is
  // loaded there, plus its instance bytes; measured, or estimated times the factor.
  int64_t NextInstanceBytes(const Account& account, const Device& device) const;
  // The model's footprint on `device`'s kind.
  MemoryFootprint FootprintOf(const Account& account, const Device& device) const;
  // Whether a load of it on a GPU has been measured.
  bool Measured(const Account& account) const;

  // The budget of `device`; 0 for a GPU the inventory lacks.
  int64_t BudgetBytes(const Device& device) const;
  // What a load on `device` could take now without evicting: the budget left and, on a GPU, the
  // driver's free memory minus the safety margin.
  int64_t RoomBytes(const Device& device) const;
  // What a load could take if every other instance there were evicted.
  int64_t CapacityBytes(const Device& device) const;
  // "cuda:0: bert-large x2 (2.10 GiB), t5-large x1 (3.02 GiB); 5.12 of 12.00 GiB used".
  std::string Describe(const Device& device) const;
  // Every device that has been used.
  std::vector<DeviceMemoryStats> Stats() const;

  void AddListener(Listener* listener);
  // Waits for a call to `listener` in progress to return.
  void RemoveListener(Listener* listener);

  const Settings& settings() const;
  Clock& clock() const;

  // The default eviction order: idle time divided by (1 + recent uses).
  static double LruWeightedScore(const EvictionCandidate& candidate, absl::Time now);

  class Impl;

 private:
  explicit MemoryGovernor(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// MemoryGovernor::Account
//
// One model's standing with the governor. Thread-safe.
class MemoryGovernor::Account {
 public:
  Account(const Account&) = delete;
  Account& operator=(const Account&) = delete;
  ~Account();

  const std::string& model() const;
  // Identifies the account in `EvictionCandidate::account`.
  const void* id() const;
  // Records a use of an instance on `device` (for the eviction order).
  void Touch(const Device& device);
  // Instances of this account loaded on `device`.
  int Instances(const Device& device) const;
  // Its idle instances evicted (on any device) to make room for other loads.
  uint64_t Evictions() const;

 private:
  friend class MemoryGovernor;
  struct State;
  explicit Account(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// MemoryGovernor::InstanceMemory
//
// The memory one loaded instance is charged with; released when this ends (after the instance
// has been destroyed). Move-only; a moved-from one releases nothing.
class MemoryGovernor::InstanceMemory {
 public:
  InstanceMemory() = default;
  InstanceMemory(InstanceMemory&& other) noexcept;
  InstanceMemory& operator=(InstanceMemory&& other) noexcept;
  ~InstanceMemory();

  // Releases now. Idempotent.
  void Release() noexcept;
  int64_t bytes() const { return bytes_; }

 private:
  friend class MemoryGovernor;
  friend class Reservation;
  InstanceMemory(std::shared_ptr<Account::State> account, Device device, int64_t bytes)
      : account_(std::move(account)), device_(device), bytes_(bytes) {}
  std::shared_ptr<Account::State> account_;
  Device device_;
  int64_t bytes_ = 0;
};

// MemoryGovernor::Reservation
//
// Room for one instance being loaded, and the device's load slot. `Commit()` once the instance
// holds its memory; dropping the reservation instead gives both back. Move-only.
class [[nodiscard]] MemoryGovernor::Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  ~Reservation();

  // MemoryGovernor::Reservation::Commit()
  //
  // Measures the load (on a GPU), charges the instance and frees the load slot.
  InstanceMemory Commit();

  // Bytes reserved.
  int64_t bytes() const { return bytes_; }
  explicit operator bool() const { return account_ != nullptr; }

 private:
  friend class MemoryGovernor;
  void Abandon() noexcept;
  std::shared_ptr<Account::State> account_;
  Device device_;
  int64_t bytes_ = 0;
  bool first_on_device_ = false;
  int64_t device_free_before_ = -1;
};

}  // namespace modelpool

#endif  // MODELPOOL_DEVICES_MEMORY_GOVERNOR_H_
