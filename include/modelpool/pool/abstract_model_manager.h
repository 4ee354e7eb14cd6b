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
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/settings.h"
#include "modelpool/base/status.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/pool/lease.h"
#include "modelpool/pool/model_pool.h"
#include "modelpool/pool/pool_sizing.h"
#include "modelpool/pool/pool_stats.h"

namespace modelpool {

// AbstractModelManager
//
// Owns the instances of one model: decides which devices they run on, keeps one
// `ModelPool<T>` per device sized by how many instances fit there, and hands out leases.
// Subclasses say how to load an instance on a device and roughly how large one is; the
// manager measures the real footprint on the first GPU load (free VRAM before and after)
// and sizes the pools with that from then on.
//
// Many managers may coexist, each with its own pools. Public methods are thread-safe. A
// subclass's factory constructs it and then calls `Initialize()`.
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

  // Shuts the pools down: waiters get `Cancelled`; leases still out stay valid.
  virtual ~AbstractModelManager() = default;

  // A name for messages and metrics, such as the model folder's name.
  virtual std::string model_name() const = 0;
  // The kind of model, such as "embedding".
  virtual std::string model_type() const = 0;

  // AbstractModelManager::Acquire()
  //
  // Leases an idle instance on the least busy device, or loads one where there is room, or
  // waits up to `timeout` on the device with the shortest queue. Fails as
  // `ModelPool::Acquire()` does; a failed load reaches the caller as its status. With
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
        return lease;
      }
    }
    return pools_[by_load.front().second].pool->Acquire(timeout, destroy_after_use);
  }

  // AbstractModelManager::AcquireOn()
  //
  // As `Acquire()`, but only an instance on `device`. `InvalidArgument` if the manager does
  // not use that device.
  absl::StatusOr<Lease<T>> AcquireOn(const Device& device, absl::Duration timeout,
                                     bool destroy_after_use = false) {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    for (const DevicePool& p : pools_) {
      if (p.device == device) return p.pool->Acquire(timeout, destroy_after_use);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(model_name(), " does not use ", device.ToString()));
  }

  // Counters summed over devices; the wait percentiles are the largest of any device's.
  PoolStats GetPoolStats() const {
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
  PoolStats GetPoolStats(const Device& device) const {
    for (const DevicePool& p : pools_) {
      if (p.device == device) return p.pool->Stats();
    }
    return PoolStats{};
  }

  // Unloads every idle instance; returns how many.
  int Cleanup() {
    int destroyed = 0;
    for (DevicePool& p : pools_) destroyed += p.pool->Cleanup();
    return destroyed;
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
  // Re-reads free VRAM (other models may have loaded or unloaded) and resizes the pools.
  // `ResourceExhausted` if not even one instance fits; the pools are then left as they were.
  absl::Status RecomputePoolSize() {
    MODELPOOL_RETURN_IF_ERROR(CheckInitialized());
    std::vector<int> placed;
    for (const DevicePool& p : pools_) placed.push_back(p.pool->Stats().total);
    MODELPOOL_ASSIGN_OR_RETURN(const PoolPlan plan, PlanPool(model_name(), settings_, *inventory_,
                                                             devices(), instance_bytes(), placed));
    for (DevicePool& p : pools_) p.pool->Resize(plan.QuotaOf(p.device));
    return absl::OkStatus();
  }

  // Bytes one instance takes on a GPU: measured once an instance has loaded on one, the
  // subclass's estimate before that.
  int64_t instance_bytes() const {
    MutexLock lock(&size_mu_);
    return measured_bytes_ > 0 ? measured_bytes_ : estimated_bytes_;
  }
  bool instance_bytes_measured() const {
    MutexLock lock(&size_mu_);
    return measured_bytes_ > 0;
  }

  const Settings& settings() const { return settings_; }

 protected:
  // `inventory` defaults to `DeviceInventory::System()`.
  explicit AbstractModelManager(Settings settings,
                                std::shared_ptr<DeviceInventory> inventory = nullptr)
      : settings_(std::move(settings)),
        inventory_(inventory ? std::move(inventory) : DeviceInventory::System()) {}

  // AbstractModelManager::Initialize()
  //
  // Chooses the devices, sizes a pool per device from free VRAM and
  // `EstimateInstanceBytes()`, and creates them (empty: instances load on first use). Call
  // once, from the subclass's factory, before the manager is shared.
  absl::Status Initialize() {
    if (!pools_.empty()) return absl::FailedPreconditionError("Initialize() called twice");
    std::string cpu_reason;
    MODELPOOL_ASSIGN_OR_RETURN(const std::vector<Device> devices,
                               SelectDevices(settings_, *inventory_, &cpu_reason));
    if (!cpu_reason.empty()) {
      Log(LogSeverity::kInfo, absl::StrCat(model_name(), " runs on the cpu: ", cpu_reason));
    }
    {
      MutexLock lock(&size_mu_);
      estimated_bytes_ = std::max<int64_t>(1, EstimateInstanceBytes());
    }
    MODELPOOL_ASSIGN_OR_RETURN(const PoolPlan plan, PlanPool(model_name(), settings_, *inventory_,
                                                             devices, instance_bytes()));
    Log(LogSeverity::kInfo,
        absl::StrCat(model_name(), ": up to ", plan.total(), " instances (", plan.ToString(), "), ",
                     FormatBytes(instance_bytes()), " each (estimated)"));
    for (const Device& device : devices) {
      MODELPOOL_ASSIGN_OR_RETURN(
          auto pool, ModelPool<T>::Create({.max_instances = plan.QuotaOf(device),
                                           .factory = [this, device] { return Load(device); }}));
      pools_.push_back({device, std::move(pool)});
    }
    return absl::OkStatus();
  }

  // Loads one instance on `device`. Called without any manager or pool lock held, possibly
  // from several threads at once (for different instances). On a GPU, the instance should
  // hold all the memory it will use (weights and workspace) when this returns, so that the
  // measurement of its footprint is right.
  virtual absl::StatusOr<std::unique_ptr<T>> LoadInstance(const Device& device) = 0;

  // Bytes one instance will take on a GPU, before it has been measured.
  virtual int64_t EstimateInstanceBytes() const = 0;

  const DeviceInventory& inventory() const { return *inventory_; }

 private:
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

  absl::StatusOr<std::unique_ptr<T>> Load(const Device& device) {
    if (device.is_cuda() && !instance_bytes_measured()) return LoadAndMeasure(device);
    return CallLoadInstance(device);
  }

  absl::StatusOr<std::unique_ptr<T>> CallLoadInstance(const Device& device) {
    return CallCatching(absl::StrCat("loading ", model_name(), " on ", device.ToString()),
                        [&] { return LoadInstance(device); });
  }

  // The first GPU load is measured alone (other first loads wait), so that the difference in
  // free VRAM is this instance's.
  absl::StatusOr<std::unique_ptr<T>> LoadAndMeasure(const Device& device) {
    MutexLock lock(&measure_mu_);
    if (instance_bytes_measured()) return CallLoadInstance(device);
    absl::StatusOr<GpuInfo> before = inventory_->Gpu(device.index);
    absl::StatusOr<std::unique_ptr<T>> instance = CallLoadInstance(device);
    if (!instance.ok() || !before.ok()) return instance;
    absl::StatusOr<GpuInfo> after = inventory_->Gpu(device.index);
    if (!after.ok()) return instance;
    const int64_t bytes = before->free_bytes - after->free_bytes;
    if (bytes <= 0) {
      Log(LogSeverity::kWarning,
          absl::StrCat(model_name(), ": free VRAM on ", device.ToString(),
                       " did not drop while loading; keeping the estimate of ",
                       FormatBytes(instance_bytes())));
      return instance;
    }
    {
      MutexLock size_lock(&size_mu_);
      measured_bytes_ = bytes;
    }
    Log(LogSeverity::kInfo, absl::StrCat(model_name(), ": one instance takes ", FormatBytes(bytes),
                                         " on ", device.ToString(), " (measured)"));
    if (absl::Status resized = RecomputePoolSize(); !resized.ok()) {
      Log(LogSeverity::kWarning, absl::StrCat(model_name(), ": ", resized.message()));
    }
    return instance;
  }

  const Settings settings_;
  const std::shared_ptr<DeviceInventory> inventory_;

  mutable Mutex size_mu_;
  int64_t estimated_bytes_ ABSL_GUARDED_BY(size_mu_) = 1;
  int64_t measured_bytes_ ABSL_GUARDED_BY(size_mu_) = 0;
  Mutex measure_mu_;  // held across the first, measured GPU load

  // Set once by Initialize(). Declared last: destroyed first, so the pools shut down while
  // the rest is intact.
  std::vector<DevicePool> pools_;
};

}  // namespace modelpool

#endif  // MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_
