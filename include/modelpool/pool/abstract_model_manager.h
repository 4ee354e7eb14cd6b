#ifndef MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_
#define MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/mutex.h"
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
// Owns a `ModelPool<T>` of one model's instances, decides which devices they run on and how
// many fit, and places each new instance on the device with the most room left. Subclasses
// say how to load an instance on a device and roughly how large one is; the manager measures
// the real footprint on the first GPU load (free VRAM before and after) and sizes the pool
// with that from then on.
//
// Many managers may coexist, each with its own pool. Public methods are thread-safe. A
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

  // Shuts the pool down: waiters get `Cancelled`; leases still out stay valid.
  virtual ~AbstractModelManager() = default;

  // A name for messages and metrics, such as the model folder's name.
  virtual std::string model_name() const = 0;
  // The kind of model, such as "embedding".
  virtual std::string model_type() const = 0;

  // AbstractModelManager::Acquire()
  //
  // Leases an instance, loading one on the roomiest device if the pool is below its size, or
  // waiting up to `timeout`. Fails as `ModelPool::Acquire()` does; a failed load reaches the
  // caller as its status. With `destroy_after_use` the instance is unloaded when the lease ends.
  absl::StatusOr<Lease<T>> Acquire(absl::Duration timeout, bool destroy_after_use = false) {
    if (pool_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(model_name(), ": the manager was not initialized"));
    }
    return pool_->Acquire(timeout, destroy_after_use);
  }

  PoolStats GetPoolStats() const { return pool_ ? pool_->Stats() : PoolStats{}; }

  // Unloads every idle instance; returns how many.
  int Cleanup() { return pool_ ? pool_->Cleanup() : 0; }

  // The devices instances may run on.
  const std::vector<Device>& devices() const { return placement_->devices; }

  // How many instances each device may hold now.
  PoolPlan plan() const {
    MutexLock lock(&placement_->mu);
    return placement_->plan;
  }

  // AbstractModelManager::RecomputePoolSize()
  //
  // Re-reads free VRAM (other models may have loaded or unloaded) and resizes the pool.
  // `ResourceExhausted` if not even one instance fits; the pool is then left as it was.
  absl::Status RecomputePoolSize() {
    std::vector<int> placed;
    {
      MutexLock lock(&placement_->mu);
      placed = placement_->placed;
    }
    MODELPOOL_ASSIGN_OR_RETURN(PoolPlan plan,
                               PlanPool(model_name(), settings_, *inventory_,
                                        placement_->devices, instance_bytes(), placed));
    const int total = plan.total();
    {
      MutexLock lock(&placement_->mu);
      placement_->plan = std::move(plan);
    }
    pool_->Resize(total);
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
        inventory_(inventory ? std::move(inventory) : DeviceInventory::System()),
        placement_(std::make_shared<Placement>()) {}

  // AbstractModelManager::Initialize()
  //
  // Chooses the devices, sizes the pool from free VRAM and `EstimateInstanceBytes()`, and
  // creates it (empty: instances load on first use). Call once, from the subclass's factory.
  absl::Status Initialize() {
    if (pool_ != nullptr) return absl::FailedPreconditionError("Initialize() called twice");
    std::string cpu_reason;
    MODELPOOL_ASSIGN_OR_RETURN(std::vector<Device> devices,
                               SelectDevices(settings_, *inventory_, &cpu_reason));
    if (!cpu_reason.empty()) {
      Log(LogSeverity::kInfo, absl::StrCat(model_name(), " runs on the cpu: ", cpu_reason));
    }
    {
      MutexLock lock(&size_mu_);
      estimated_bytes_ = std::max<int64_t>(1, EstimateInstanceBytes());
    }
    MODELPOOL_ASSIGN_OR_RETURN(PoolPlan plan, PlanPool(model_name(), settings_, *inventory_,
                                                       devices, instance_bytes()));
    const int total = plan.total();
    Log(LogSeverity::kInfo, absl::StrCat(model_name(), ": pool of ", total, " (",
                                         plan.ToString(), "), ", FormatBytes(instance_bytes()),
                                         " per instance (estimated)"));
    {
      MutexLock lock(&placement_->mu);
      placement_->devices = std::move(devices);
      placement_->placed.assign(placement_->devices.size(), 0);
      placement_->plan = std::move(plan);
    }
    MODELPOOL_ASSIGN_OR_RETURN(
        pool_, ModelPool<T>::Create({.max_instances = total,
                                     .factory = [this] { return MakeInstance(); },
                                     .destroyer = [placement = placement_](
                                                      std::unique_ptr<T> instance) {
                                       placement->Forget(instance.get());
                                       instance.reset();
                                     }}));
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
  // Which device holds each instance. Shared with the pool's destroyer, which may run after
  // the manager is gone (a lease that outlives it).
  struct Placement {
    Mutex mu;
    std::vector<Device> devices;  // set once by Initialize()
    std::vector<int> placed ABSL_GUARDED_BY(mu);  // instances per device, loading ones too
    PoolPlan plan ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<const T*, int> device_of ABSL_GUARDED_BY(mu);

    // The index of the device with the lowest fill (placed / quota) that has room.
    int Reserve() {
      MutexLock lock(&mu);
      int best = -1;
      double best_fill = std::numeric_limits<double>::infinity();
      for (size_t i = 0; i < devices.size(); ++i) {
        const int quota = plan.QuotaOf(devices[i]);
        if (placed[i] >= quota) continue;
        const double fill = static_cast<double>(placed[i]) / quota;
        if (fill < best_fill) {
          best = static_cast<int>(i);
          best_fill = fill;
        }
      }
      if (best >= 0) ++placed[best];
      return best;
    }
    void Unreserve(int index) {
      MutexLock lock(&mu);
      --placed[index];
    }
    void Record(const T* instance, int index) {
      MutexLock lock(&mu);
      device_of[instance] = index;
    }
    void Forget(const T* instance) {
      MutexLock lock(&mu);
      auto it = device_of.find(instance);
      if (it == device_of.end()) return;
      --placed[it->second];
      device_of.erase(it);
    }
  };

  absl::StatusOr<std::unique_ptr<T>> MakeInstance() {
    const int index = placement_->Reserve();
    if (index < 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          model_name(), ": every device is at its quota (", plan().ToString(), ")"));
    }
    const Device device = placement_->devices[index];
    absl::StatusOr<std::unique_ptr<T>> instance =
        device.is_cuda() && !instance_bytes_measured() ? LoadAndMeasure(device) : Load(device);
    if (!instance.ok()) {
      placement_->Unreserve(index);
      return instance.status();
    }
    placement_->Record(instance->get(), index);
    return instance;
  }

  absl::StatusOr<std::unique_ptr<T>> Load(const Device& device) {
    absl::StatusOr<std::unique_ptr<T>> instance = CallCatching(
        absl::StrCat("loading ", model_name(), " on ", device.ToString()),
        [&] { return LoadInstance(device); });
    if (instance.ok() && *instance == nullptr) {
      return absl::InternalError(absl::StrCat(model_name(), ": LoadInstance returned nothing"));
    }
    return instance;
  }

  // The first GPU load is measured alone (other first loads wait), so that the difference in
  // free VRAM is this instance's.
  absl::StatusOr<std::unique_ptr<T>> LoadAndMeasure(const Device& device) {
    MutexLock lock(&measure_mu_);
    if (instance_bytes_measured()) return Load(device);
    absl::StatusOr<GpuInfo> before = inventory_->Gpu(device.index);
    absl::StatusOr<std::unique_ptr<T>> instance = Load(device);
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
    Log(LogSeverity::kInfo, absl::StrCat(model_name(), ": one instance takes ",
                                         FormatBytes(bytes), " on ", device.ToString(),
                                         " (measured)"));
    if (absl::Status resized = RecomputePoolSize(); !resized.ok()) {
      Log(LogSeverity::kWarning, absl::StrCat(model_name(), ": ", resized.message()));
    }
    return instance;
  }

  const Settings settings_;
  const std::shared_ptr<DeviceInventory> inventory_;
  const std::shared_ptr<Placement> placement_;

  mutable Mutex size_mu_;
  int64_t estimated_bytes_ ABSL_GUARDED_BY(size_mu_) = 1;
  int64_t measured_bytes_ ABSL_GUARDED_BY(size_mu_) = 0;
  Mutex measure_mu_;  // held across the first, measured GPU load

  // Declared last: destroyed first, so the pool shuts down while the rest is intact.
  std::unique_ptr<ModelPool<T>> pool_;
};

}  // namespace modelpool

#endif  // MODELPOOL_POOL_ABSTRACT_MODEL_MANAGER_H_
