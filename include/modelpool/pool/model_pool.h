#ifndef MODELPOOL_POOL_MODEL_POOL_H_
#define MODELPOOL_POOL_MODEL_POOL_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"
#include "modelpool/pool/internal/pool_state.h"
#include "modelpool/pool/lease.h"
#include "modelpool/pool/pool_stats.h"

namespace modelpool {

// ModelPool
//
// A thread-safe pool of up to `max_instances` instances of `T`, made on demand by a factory
// and handed out as `Lease<T>`s. Acquirers that find every instance leased wait in line, first
// come, first served (see Note [Hand-off] for the one bounded exception). Instances are
// created and destroyed outside the pool's lock, by the thread that needs one (creation) or
// that ends the last use (destruction).
//
// Example:
//   auto pool = ModelPool<Embedder>::Create({
//       .max_instances = 2,
//       .factory = [] { return Embedder::Load("/models/x"); }});
//   absl::StatusOr<Lease<Embedder>> lease = (*pool)->Acquire(absl::Seconds(1));
template <typename T>
class ModelPool {
 public:
  // Makes an instance; an error (or exception) reaches the acquirer that asked for it.
  using Factory = typename pool_internal::PoolState<T>::Factory;
  // Disposes of an instance; the default deletes it. Never called with the pool's lock held.
  using Destroyer = typename pool_internal::PoolState<T>::Destroyer;

  struct Options {
    int max_instances = 1;
    Factory factory;
    Destroyer destroyer;
  };

  // ModelPool::Create()
  //
  // `InvalidArgument` when the factory is missing or `max_instances` is negative. No instance
  // is made until the first `Acquire()`.
  static absl::StatusOr<std::unique_ptr<ModelPool>> Create(Options options) {
    if (!options.factory) return absl::InvalidArgumentError("ModelPool needs a factory");
    if (options.max_instances < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_instances is ", options.max_instances, ": it cannot be negative"));
    }
    return std::unique_ptr<ModelPool>(new ModelPool(new pool_internal::PoolState<T>(
        options.max_instances, std::move(options.factory), std::move(options.destroyer))));
  }

  ModelPool(const ModelPool&) = delete;
  ModelPool& operator=(const ModelPool&) = delete;

  // Shuts the pool down and waits for woken waiters to leave; leases still out stay valid.
  ~ModelPool() { state_->Abandon(); }

  // ModelPool::Acquire()
  //
  // Leases an idle instance, or creates one if the pool is below its limit, or waits up to
  // `timeout` for one to be released. Fails with `DeadlineExceeded` when the wait times out,
  // `Cancelled` when the pool is or becomes shut down, or the factory's error when creating
  // an instance for this caller fails. With `destroy_after_use`, ending the lease destroys
  // the instance. Thread-safe.
  absl::StatusOr<Lease<T>> Acquire(absl::Duration timeout, bool destroy_after_use = false) {
    return state_->Acquire(timeout, destroy_after_use);
  }

  // ModelPool::TryAcquire()
  //
  // As `Acquire()` without waiting: `DeadlineExceeded` at once when no instance is free and
  // none may be created. It may still run the factory. Thread-safe.
  absl::StatusOr<Lease<T>> TryAcquire() { return Acquire(absl::ZeroDuration()); }

  // Counters and acquire-wait percentiles. Thread-safe.
  PoolStats Stats() const { return state_->Stats(); }
  // The counters alone, without the percentiles (which take a walk over a histogram): for
  // callers that ask often. Thread-safe.
  PoolStats Counts() const { return state_->Counts(); }

  // ModelPool::Resize()
  //
  // Sets the limit on live instances. Shrinking destroys idle instances now and leased ones
  // as their leases end, until the pool fits; growing lets waiters create instances at once.
  // Thread-safe.
  void Resize(int max_instances) { state_->Resize(max_instances < 0 ? 0 : max_instances); }

  // ModelPool::AcquireIdle()
  //
  // Leases an idle instance if there is one, without creating one or waiting: `NotFound` when
  // none is idle (or waiters have waited long enough to have the next one), `Cancelled` after
  // shutdown. Thread-safe.
  absl::StatusOr<Lease<T>> AcquireIdle(bool destroy_after_use = false) {
    return state_->AcquireIdle(destroy_after_use);
  }

  // ModelPool::AddInstance()
  //
  // Creates one more instance with `factory` (not the pool's own) and leases it, raising
  // `max_instances` if the pool is full: for callers that decide themselves when an instance may
  // be made, such as a memory-aware scheduler. Fails with the factory's error or `Cancelled`.
  // Thread-safe.
  absl::StatusOr<Lease<T>> AddInstance(const Factory& factory, bool destroy_after_use = false) {
    return state_->AddInstance(factory, destroy_after_use);
  }

  // ModelPool::DestroyIdle()
  //
  // Destroys up to `max_count` idle instances, least recently used first (they are made again
  // on demand); returns how many. Thread-safe.
  int DestroyIdle(int max_count = std::numeric_limits<int>::max()) {
    return state_->DestroyIdle(max_count);
  }

  // ModelPool::Shutdown()
  //
  // Fails every waiting and later `Acquire()` with `Cancelled` and destroys idle instances;
  // instances leased now are destroyed when their leases end. Idempotent. Thread-safe.
  void Shutdown() { state_->Shutdown(); }

 private:
  explicit ModelPool(pool_internal::PoolState<T>* state) : state_(state) {}

  pool_internal::PoolState<T>* const state_;  // frees itself: Note [Pool state lifetime]
};

}  // namespace modelpool

#endif  // MODELPOOL_POOL_MODEL_POOL_H_
