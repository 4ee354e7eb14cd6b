#ifndef MODELPOOL_WORKERS_INTERNAL_MODEL_BACKEND_H_
#define MODELPOOL_WORKERS_INTERNAL_MODEL_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <typeindex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/pool/abstract_model_manager.h"
#include "modelpool/workers/internal/joinable_task.h"
#include "modelpool/workers/internal/model_call.h"

namespace modelpool::workers_internal {

// An instance a worker holds; ending it returns the instance to its manager's pool.
class HeldInstance {
 public:
  virtual ~HeldInstance() = default;
  virtual void* get() = 0;
  // Ends the lease by unloading the instance instead of returning it.
  virtual void Destroy() = 0;
};

struct InstanceCount {
  int total = 0;
  int idle = 0;
};

// A registered model, with its instance type erased: what the scheduler asks of a manager.
class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  virtual std::type_index type() const = 0;
  virtual std::vector<Device> devices() const = 0;
  virtual const std::shared_ptr<MemoryGovernor>& governor() const = 0;
  // Its memory account, as `EvictionCandidate::account` names it.
  virtual const void* account() const = 0;
  // The manager's `max_instances`.
  virtual int max_instances() const = 0;
  virtual absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireIdleOn(const Device& device) = 0;
  virtual absl::StatusOr<std::unique_ptr<HeldInstance>> LoadOn(
      const Device& device, const MemoryGovernor::ReserveOptions& options) = 0;
  virtual absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireAny(absl::Duration timeout) = 0;
  virtual InstanceCount Instances(const Device& device) const = 0;
  virtual int UnloadIdle(const Device& device, int max_count) = 0;
  virtual int64_t NextInstanceBytes(const Device& device) const = 0;
  virtual void TouchOn(const Device& device) = 0;
  // Its idle instances evicted by the governor for other loads.
  virtual uint64_t Evictions() const = 0;
  // Frees the memory the framework caches on `device` (after an out-of-memory error).
  virtual void ReleaseCachedMemory(const Device& device) = 0;
};

template <typename T>
class ManagerBackend : public ModelBackend {
 public:
  explicit ManagerBackend(std::shared_ptr<AbstractModelManager<T>> manager)
      : manager_(std::move(manager)) {}
  std::type_index type() const override { return typeid(T); }
  std::vector<Device> devices() const override { return manager_->devices(); }
  const std::shared_ptr<MemoryGovernor>& governor() const override {
    return manager_->memory_governor();
  }
  const void* account() const override {
    return manager_->memory_account() == nullptr ? nullptr : manager_->memory_account()->id();
  }
  int max_instances() const override { return manager_->settings().max_instances; }
  absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireIdleOn(const Device& device) override {
    return Hold(manager_->AcquireIdleOn(device));
  }
  absl::StatusOr<std::unique_ptr<HeldInstance>> LoadOn(
      const Device& device, const MemoryGovernor::ReserveOptions& options) override {
    return Hold(manager_->LoadOn(device, options));
  }
  absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireAny(absl::Duration timeout) override {
    return Hold(manager_->Acquire(timeout));
  }
  InstanceCount Instances(const Device& device) const override {
    const PoolStats stats = manager_->Counts(device);
    return {stats.total, stats.available};
  }
  int UnloadIdle(const Device& device, int max_count) override {
    return manager_->UnloadIdle(device, max_count);
  }
  int64_t NextInstanceBytes(const Device& device) const override {
    return manager_->NextInstanceBytes(device);
  }
  void TouchOn(const Device& device) override { manager_->TouchOn(device); }
  uint64_t Evictions() const override {
    return manager_->memory_account() == nullptr ? 0 : manager_->memory_account()->Evictions();
  }
  void ReleaseCachedMemory(const Device& device) override {
    manager_->ReleaseCachedMemoryOn(device);
  }

 private:
  class Held : public HeldInstance {
   public:
    explicit Held(Lease<T> lease) : lease_(std::move(lease)) {}
    void* get() override { return lease_.get(); }
    void Destroy() override { lease_.Destroy(); }

   private:
    Lease<T> lease_;
  };
  static absl::StatusOr<std::unique_ptr<HeldInstance>> Hold(absl::StatusOr<Lease<T>> lease) {
    if (!lease.ok()) return lease.status();
    return std::make_unique<Held>(*std::move(lease));
  }

  std::shared_ptr<AbstractModelManager<T>> manager_;
};

// Runs a request (or a health check) on an instance, calling the model through `call`, and
// returns its status.
using RunFn = std::function<absl::Status(void* instance, ModelCall& call)>;

// One request. It ends exactly once: `run` (with an instance, returning the request's status)
// then `publish` (after the pool has counted it, so counters never lag a result), or `fail`.
// A `run` the pool gave up on (it hung) is left running, with `fail` called meanwhile: it
// must not publish on its own, and it is shared so that it outlives the request's record.
// A request that may run with others has a `joinable`, which a worker runs (joined or alone);
// `run` then runs it alone where no worker does.
struct Task {
  std::shared_ptr<const RunFn> run;
  std::function<void()> publish;
  std::function<void(absl::Status)> fail;
  std::shared_ptr<JoinableTask> joinable;
};

// Completions
//
// Which of a group of requests have ended, for a caller that waits on all of them and reports
// progress as they end: each ending wakes the waiter, which sleeps otherwise. Thread-safe.
class Completions {
 public:
  // Records that request `index` has ended (its future holds its result).
  void Done(size_t index) {
    MutexLock lock(&mu_);
    done_.push_back(index);
    cv_.Signal();
  }

  // Waits until at least one request has ended since the last call; returns those that did.
  std::vector<size_t> WaitForMore() {
    MutexLock lock(&mu_);
    while (done_.empty()) mu_.WaitWithDeadline(&cv_, absl::InfiniteFuture());
    std::vector<size_t> done;
    done.swap(done_);
    return done;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::vector<size_t> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_WORKERS_INTERNAL_MODEL_BACKEND_H_
