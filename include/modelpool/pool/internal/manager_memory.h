#ifndef MODELPOOL_POOL_INTERNAL_MANAGER_MEMORY_H_
#define MODELPOOL_POOL_INTERNAL_MANAGER_MEMORY_H_

#include <functional>
#include <unordered_map>

#include "modelpool/base/device.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/memory_governor.h"

namespace modelpool::pool_internal {

// InstanceMemoryTable
//
// The memory the governor charged to each live instance of a manager, by the instance's
// address. The pool's destroyer takes an instance's entry and releases it once the instance is
// gone; the table outlives the manager for leases that do. Thread-safe.
class InstanceMemoryTable {
 public:
  void Put(const void* instance, MemoryGovernor::InstanceMemory memory) {
    MutexLock lock(&mu_);
    memory_[instance] = std::move(memory);
  }

  // The entry of `instance` (an empty one if it has none), removed from the table.
  MemoryGovernor::InstanceMemory Take(const void* instance) {
    MutexLock lock(&mu_);
    auto it = memory_.find(instance);
    if (it == memory_.end()) return MemoryGovernor::InstanceMemory();
    MemoryGovernor::InstanceMemory memory = std::move(it->second);
    memory_.erase(it);
    return memory;
  }

 private:
  Mutex mu_;
  std::unordered_map<const void*, MemoryGovernor::InstanceMemory> memory_ ABSL_GUARDED_BY(mu_);
};

// ManagerOwner
//
// What the governor asks of a manager (evict an idle instance, count them, give cached memory
// back), forwarded to the manager from when it attaches (its pools exist) until it detaches in
// its destructor. Thread-safe.
class ManagerOwner : public MemoryGovernor::Owner {
 public:
  struct Hooks {
    std::function<bool(const Device&)> destroy_idle;
    std::function<int(const Device&)> idle;
    std::function<void(const Device&)> release_cache;
  };

  void Attach(Hooks hooks) {
    MutexLock lock(&mu_);
    hooks_ = std::move(hooks);
  }

  // From now on every call does nothing; waits for a call in progress to return.
  void Detach() {
    MutexLock lock(&mu_);
    hooks_ = Hooks();
  }

  bool DestroyIdleInstance(const Device& device) override {
    MutexLock lock(&mu_);
    return hooks_.destroy_idle && hooks_.destroy_idle(device);
  }
  int IdleInstances(const Device& device) override {
    MutexLock lock(&mu_);
    return hooks_.idle ? hooks_.idle(device) : 0;
  }
  void ReleaseCachedMemory(const Device& device) override {
    MutexLock lock(&mu_);
    if (hooks_.release_cache) hooks_.release_cache(device);
  }

 private:
  Mutex mu_;
  Hooks hooks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool::pool_internal

#endif  // MODELPOOL_POOL_INTERNAL_MANAGER_MEMORY_H_
