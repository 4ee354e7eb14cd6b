#ifndef MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_
#define MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/device.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/settings.h"
#include "modelpool/base/status.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/pool/internal/manager_memory.h"
#include "modelpool/pool/lease.h"
#include "modelpool/pool/model_pool.h"
#include "modelpool/pool/pool_sizing.h"
#include "modelpool/pool/pool_stats.h"

namespace modelpool {

// AbstractModelManager
//
// Owns the instances of one model: decides which devices they run on, keeps one
// `ModelPool<T>` per device, and hands out leases. Subclasses say how to load an instance on a
// device and roughly how large one is.
//
// Memory comes from the `MemoryGovernor` of the device inventory, which every manager and worker
// pool on it shares: each load reserves its instance's footprint from the device's budget first
// (evicting idle instances of other models when it does not fit), and the governor measures the
// real footprint on GPU loads and plans with it from then on. A pool's size per device follows
// what the budget has room for (`plan()`, `RecomputePoolSize()`).
//
// Public methods are thread-safe. A subclass's factory constructs it and then calls
// `Initialize()`.
//
// Example (see examples/custom_manager):
//   class ScorerManager : public AbstractModelManager<Scorer> {
//    public:
//     static absl::StatusOr<std::unique_ptr<ScorerManager>> Create(Settings settings) {
//       auto manager = std::unique_ptr<ScorerManager>(new ScorerManager(std::move(settings)));
//       MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
//       return manager;
//     }
//     ...
//   };
template <typename T>
class AbstractModelManager {
 public:
  AbstractModelManager(const AbstractModelManager&) = delete;
  AbstractModelManager& operator=(const AbstractModelManager&) = delete;

  // Shuts the pools down: waiters get `Cancelled`; leases still out stay valid, and their
  // memory is released when they end.
  virtual ~AbstractModelManager() {
    if (owner_ != nullptr) owner_->Detach();
  }

  // A name for messages and metrics, such as the model folder's name.
  virtual std::string model_name() const = 0;
  // The kind of model, such as "embedding".
  virtual std::string model_type() const = 0;

  // AbstractModelManager::Acquire()
  //
  // Leases an idle instance on the least busy device, or loads one where there is room, or
  // waits up to `timeout` on the device with the shortest queue. Fails as
  // `ModelPool::Acquire()` does; a failed load reaches the caller as its status
  // (`ResourceExhausted` when the memory budget has no room, saying what is loaded). With
  // `destroy_after_use` the instance is unloaded when the lease ends.
  absl::StatusOr<Lease<T>> Acquire(absl::Duration timeout, bool destroy_after_use = false) {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    std::vector<std::pair<double, size_t>> by_load;
    for (size_t i = 0; i < pools_.size(); ++i) {
      const PoolStats s = pools_[i].pool->Stats();
      if (s.max_instances == 0) continue;
      by_load.emplace_back(static_cast<double>(s.in_use + s.waiting) / s.max_instances, i);
    }
    if (by_load.empty()) {
      return absl::ResourceExhaustedError(absl::StrCat(model_name(), ": no device has room"));
    }
    std::sort(by_load.begin(), by_load.end());
    for (const auto& [load, i] : by_load) {
      absl::StatusOr<Lease<T>> lease =
          pools_[i].pool->Acquire(absl::ZeroDuration(), destroy_after_use);
      if (lease.ok() || lease.status().code() != absl::StatusCode::kDeadlineExceeded) {
        return Touched(i, std::move(lease));
      }
    }
    const size_t i = by_load.front().second;
    return Touched(i, pools_[i].pool->Acquire(timeout, destroy_after_use));
  }

  // AbstractModelManager::AcquireOn()
  //
  // As `Acquire()`, but only an instance on `device`. `InvalidArgument` if the manager does
  // not use that device.
  absl::StatusOr<Lease<T>> AcquireOn(const Device& device, absl::Duration timeout,
                                     bool destroy_after_use = false) {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    MODELPOOL_ASSIGN_OR_RETURN(const size_t i, PoolOf(device));
    return Touched(i, pools_[i].pool->Acquire(timeout, destroy_after_use));
  }

  // AbstractModelManager::AcquireIdleOn()
  //
  // Leases an instance on `device` that is loaded and idle, without loading or waiting:
  // `NotFound` when there is none.
  absl::StatusOr<Lease<T>> AcquireIdleOn(const Device& device, bool destroy_after_use = false) {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    MODELPOOL_ASSIGN_OR_RETURN(const size_t i, PoolOf(device));
    return Touched(i, pools_[i].pool->AcquireIdle(destroy_after_use));
  }

  // AbstractModelManager::LoadOn()
  //
  // Loads one more instance on `device`, whatever the pool's size, with room reserved from the
  // memory budget under `options` (which idle instances may be evicted, by when), and leases it.
  // For schedulers that decide placement themselves. Fails as `MemoryGovernor::Reserve()` and
  // the load do.
  absl::StatusOr<Lease<T>> LoadOn(const Device& device,
                                  const MemoryGovernor::ReserveOptions& options,
                                  bool destroy_after_use = false) {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    MODELPOOL_ASSIGN_OR_RETURN(const size_t i, PoolOf(device));
    return Touched(i, pools_[i].pool->AddInstance(
                          [this, &device, &options] { return LoadReserved(device, options); },
                          destroy_after_use));
  }

  // Counters summed over devices; the wait percentiles are the largest of any device's.
  PoolStats Stats() const {
    PoolStats sum;
    for (const DevicePool& p : pools_) {
      const PoolStats s = p.pool->Stats();
      sum.available += s.available;
      sum.in_use += s.in_use;
      sum.total += s.total;
      sum.max_instances += s.max_instances;
      sum.waiting += s.waiting;
      sum.created += s.created;
      sum.destroyed += s.destroyed;
      sum.failed_creations += s.failed_creations;
      sum.timeouts += s.timeouts;
      sum.acquire_wait_p50 = std::max(sum.acquire_wait_p50, s.acquire_wait_p50);
      sum.acquire_wait_p99 = std::max(sum.acquire_wait_p99, s.acquire_wait_p99);
    }
    return sum;
  }

  // The counters of the pool on `device`; empty if the manager does not use it.
  PoolStats Stats(const Device& device) const {
    for (const DevicePool& p : pools_) {
      if (p.device == device) return p.pool->Stats();
    }
    return PoolStats{};
  }
  // As `Stats(device)` without the wait percentiles, for callers that ask often.
  PoolStats Counts(const Device& device) const {
    for (const DevicePool& p : pools_) {
      if (p.device == device) return p.pool->Counts();
    }
    return PoolStats{};
  }

  // Unloads every idle instance; returns how many.
  int DestroyIdle() {
    int destroyed = 0;
    for (DevicePool& p : pools_) destroyed += p.pool->DestroyIdle();
    return destroyed;
  }

  // AbstractModelManager::UnloadIdle()
  //
  // Unloads up to `max_count` idle instances on `device`, least recently used first, and checks
  // with the governor that their memory came back. Returns how many.
  int UnloadIdle(const Device& device, int max_count) {
    if (account_ == nullptr) return 0;
    return governor_->Unload(*account_, device, max_count);
  }

  // The devices instances may run on.
  std::vector<Device> devices() const {
    std::vector<Device> devices;
    for (const DevicePool& p : pools_) devices.push_back(p.device);
    return devices;
  }

  // How many instances each device may hold now.
  PoolPlan plan() const {
    PoolPlan plan;
    for (const DevicePool& p : pools_) {
      const int max = p.pool->Stats().max_instances;
      if (max > 0) plan.quotas.push_back({p.device, max});
    }
    return plan;
  }

  // AbstractModelManager::RecomputePoolSize()
  //
  // Asks the governor again what the budget has room for (other models may have loaded or
  // unloaded) and resizes the pools. `ResourceExhausted` if not even one instance fits; the
  // pools are then left as they were.
  absl::Status RecomputePoolSize() {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    std::vector<int> placed;
    for (const DevicePool& p : pools_) placed.push_back(p.pool->Stats().total);
    MODELPOOL_ASSIGN_OR_RETURN(const PoolPlan plan, Plan(devices(), placed));
    for (DevicePool& p : pools_) p.pool->Resize(plan.QuotaOf(p.device));
    return absl::OkStatus();
  }

  // Bytes a first instance takes on the manager's first device: measured once an instance has
  // loaded on a GPU, the subclass's estimate times `footprint_estimate_factor` before that.
  int64_t instance_bytes() const {
    if (account_ == nullptr || pools_.empty()) return 0;
    return governor_->FootprintOf(*account_, pools_.front().device).first_instance_bytes();
  }
  bool instance_bytes_measured() const {
    return account_ != nullptr && governor_->Measured(*account_);
  }
  // The model's footprint on `device`, as the governor plans with it.
  MemoryFootprint footprint(const Device& device) const {
    if (account_ == nullptr) return {};
    return governor_->FootprintOf(*account_, device);
  }
  // What one more instance on `device` would take now.
  int64_t NextInstanceBytes(const Device& device) const {
    if (account_ == nullptr) return 0;
    return governor_->NextInstanceBytes(*account_, device);
  }

  // Records a use of an instance on `device` for the eviction order (leasing one records it
  // already; a caller that holds leases long records their ends too).
  void TouchOn(const Device& device) {
    if (account_ != nullptr) account_->Touch(device);
  }

  const Settings& settings() const { return settings_; }
  // The governor the manager takes memory from; null before `Initialize()`.
  const std::shared_ptr<MemoryGovernor>& memory_governor() const { return governor_; }
  // The manager's account with it; null before `Initialize()`.
  const MemoryGovernor::Account* memory_account() const { return account_.get(); }

 protected:
  // `inventory` defaults to `DeviceInventory::System()`, `governor` to the one every manager on
  // that inventory shares (`MemoryGovernor::Shared()`).
  explicit AbstractModelManager(Settings settings,
                                std::shared_ptr<DeviceInventory> inventory = nullptr,
                                std::shared_ptr<MemoryGovernor> governor = nullptr)
      : settings_(std::move(settings)),
        inventory_(inventory ? std::move(inventory) : DeviceInventory::System()),
        governor_(std::move(governor)) {}

  // AbstractModelManager::Initialize()
  //
  // Chooses the devices, opens an account with the memory governor, sizes a pool per device
  // from the budget and `EstimateFootprint()`, and creates them (empty: instances load on first
  // use). Call once, from the subclass's factory, before the manager is shared.
  absl::Status Initialize() {
    if (!pools_.empty()) return absl::FailedPreconditionError("Initialize() called twice");
    std::string cpu_reason;
    MODELPOOL_ASSIGN_OR_RETURN(const std::vector<Device> devices,
                               SelectDevices(settings_, *inventory_, &cpu_reason));
    if (!cpu_reason.empty()) {
      // GPUs that are there but cannot be used are worth a warning; no GPU at all is not.
      const bool unusable = inventory_->UsableGpuCount() < inventory_->GpuCount();
      Log(unusable ? LogSeverity::kWarning : LogSeverity::kInfo,
          absl::StrCat(model_name(), " runs on the cpu: ", cpu_reason));
    }
    if (governor_ == nullptr) {
      MODELPOOL_ASSIGN_OR_RETURN(governor_, MemoryGovernor::Shared(inventory_, settings_));
    }
    instances_ = std::make_shared<pool_internal::InstanceMemoryTable>();
    owner_ = std::make_shared<pool_internal::ManagerOwner>();
    account_ =
        governor_->Register({.model = model_name(),
                             .variant = [this](const Device& d) { return footprint_variant(d); },
                             .estimate = [this](const Device& d) { return EstimateFootprint(d); },
                             .owner = owner_});
    MODELPOOL_ASSIGN_OR_RETURN(const PoolPlan plan,
                               Plan(devices, std::vector<int>(devices.size(), 0)));
    Log(LogSeverity::kInfo,
        absl::StrCat(model_name(), ": up to ", plan.total(), " instances (", plan.ToString(), "), ",
                     FormatBytes(footprint(devices.front()).first_instance_bytes()),
                     " for a first instance (estimated)"));
    std::vector<DevicePool> pools;
    for (const Device& device : devices) {
      MODELPOOL_ASSIGN_OR_RETURN(
          auto pool,
          ModelPool<T>::Create(
              {.max_instances = plan.QuotaOf(device),
               .factory = [this, device] { return LoadReserved(device, DefaultReserve()); },
               .destroyer =
                   [table = instances_](std::unique_ptr<T> instance) {
                     // Released once the instance is gone, so the budget never runs ahead of
                     // the device.
                     MemoryGovernor::InstanceMemory memory = table->Take(instance.get());
                     instance.reset();
                   }}));
      pools.push_back({device, std::move(pool)});
    }
    pools_ = std::move(pools);
    owner_->Attach(pool_internal::ManagerOwner::Hooks{
        .destroy_idle =
            [this](const Device& d) {
              for (DevicePool& p : pools_) {
                if (p.device == d) return p.pool->DestroyIdle(1) == 1;
              }
              return false;
            },
        .idle =
            [this](const Device& d) {
              for (DevicePool& p : pools_) {
                if (p.device == d) return p.pool->Counts().available;
              }
              return 0;
            },
        .release_cache = [this](const Device& d) { ReleaseCachedMemory(d); }});
    return absl::OkStatus();
  }

  // Loads one instance on `device`. Called without any manager or pool lock held, possibly
  // from several threads at once (for different devices; loads on one device run one at a
  // time). On a GPU, the instance should hold all the memory it will use (weights and
  // workspace) when this returns, so that the measurement of its footprint is right.
  virtual absl::StatusOr<std::unique_ptr<T>> LoadInstance(const Device& device) = 0;

  // Bytes one instance will take on a GPU, weights and workspace, before it has been measured.
  virtual int64_t EstimateInstanceBytes() const = 0;

  // The estimate split into the bytes that the instances on one device share (read-only
  // weights, loaded once per device) and those each instance has (its workspace). The default
  // counts everything as per-instance: right for instances that share nothing.
  virtual MemoryFootprint EstimateFootprint(const Device& device) const {
    return {0, EstimateInstanceBytes()};
  }

  // What besides the model and the device kind changes an instance's size (its dtype, say);
  // measurements are kept apart for each.
  virtual std::string footprint_variant(const Device& device) const { return ""; }

  // Hands memory cached by the framework on `device` back to the driver after instances were
  // unloaded (libtorch keeps freed blocks in its caching allocator). Default: nothing.
  virtual void ReleaseCachedMemory(const Device& device) {}

  const DeviceInventory& inventory() const { return *inventory_; }

 private:
  // How long a load waits for the device's previous load to finish.
  static constexpr absl::Duration kLoadSlotWait = absl::Minutes(10);

  struct DevicePool {
    Device device;
    std::unique_ptr<ModelPool<T>> pool;
  };

  absl::Status CheckInitialized() const {
    if (pools_.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(model_name(), ": the manager was not initialized"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> PoolOf(const Device& device) const {
    for (size_t i = 0; i < pools_.size(); ++i) {
      if (pools_[i].device == device) return i;
    }
    return absl::InvalidArgumentError(
        absl::StrCat(model_name(), " does not use ", device.ToString()));
  }

  absl::StatusOr<Lease<T>> Touched(size_t pool, absl::StatusOr<Lease<T>> lease) {
    if (lease.ok()) account_->Touch(pools_[pool].device);
    return lease;
  }

  static MemoryGovernor::ReserveOptions DefaultReserve() {
    MemoryGovernor::ReserveOptions options;
    options.deadline = absl::Now() + kLoadSlotWait;
    return options;
  }

  // Sizes the pools from what the governor says each device has room for.
  absl::StatusOr<PoolPlan> Plan(const std::vector<Device>& devices,
                                const std::vector<int>& placed) const {
    std::vector<DeviceRoom> rooms;
    for (size_t i = 0; i < devices.size(); ++i) {
      DeviceRoom r;
      r.device = devices[i];
      r.room_bytes = governor_->RoomBytes(devices[i]);
      r.capacity_bytes = governor_->CapacityBytes(devices[i]);
      r.placed = placed[i];
      r.footprint = governor_->FootprintOf(*account_, devices[i]);
      r.reading = absl::StrCat(devices[i].ToString(), " has ", FormatBytes(r.room_bytes),
                               " free for models (", FormatBytes(r.capacity_bytes),
                               " with idle instances evicted)");
      rooms.push_back(std::move(r));
    }
    return PlanPool(model_name(), settings_.max_instances, rooms);
  }

  // Reserves the memory, loads, and charges the instance with what the governor measured.
  absl::StatusOr<std::unique_ptr<T>> LoadReserved(const Device& device,
                                                  const MemoryGovernor::ReserveOptions& options) {
    MODELPOOL_ASSIGN_OR_RETURN(MemoryGovernor::Reservation reservation,
                               governor_->Reserve(*account_, device, options));
    const bool measured_before = governor_->Measured(*account_);
    absl::StatusOr<std::unique_ptr<T>> instance =
        CallCatching(absl::StrCat("loading ", model_name(), " on ", device.ToString()),
                     [&] { return LoadInstance(device); });
    if (!instance.ok()) return instance.status();  // the reservation is given back
    if (*instance == nullptr) {
      return absl::InternalError(absl::StrCat(model_name(), ": LoadInstance returned nothing"));
    }
    instances_->Put(instance->get(), reservation.Commit());
    if (!measured_before && governor_->Measured(*account_)) {
      if (absl::Status resized = RecomputePoolSize(); !resized.ok()) {
        Log(LogSeverity::kWarning, absl::StrCat(model_name(), ": ", resized.message()));
      }
    }
    return instance;
  }

  const Settings settings_;
  const std::shared_ptr<DeviceInventory> inventory_;
  // Set once by Initialize().
  std::shared_ptr<MemoryGovernor> governor_;
  std::shared_ptr<pool_internal::InstanceMemoryTable> instances_;
  std::shared_ptr<pool_internal::ManagerOwner> owner_;
  std::unique_ptr<MemoryGovernor::Account> account_;
  // Declared last: destroyed first, so the pools shut down while the rest is intact.
  std::vector<DevicePool> pools_;
};

}  // namespace modelpool

#endif  // MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_
