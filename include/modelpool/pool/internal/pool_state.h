#ifndef MODELPOOL_POOL_INTERNAL_POOL_STATE_H_
#define MODELPOOL_POOL_INTERNAL_POOL_STATE_H_

// What `ModelPool<T>` needs but users do not touch: its shared state. Include
// "modelpool/pool/model_pool.h" instead.

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
#include "modelpool/pool/lease.h"
#include "modelpool/pool/pool_stats.h"

namespace modelpool {
namespace pool_internal {

// PoolState
//
// A pool's instances, queue and counters. See Note [Pool state lifetime] and Note [Hand-off].
//
// Note [Pool state lifetime]
// A lease may end after its pool object is gone (a lease kept in a long-lived object, a pool
// torn down on shutdown). When the pool object goes, it shuts the state down and waits for
// woken waiters to leave; the state then frees itself with the last lease that ends, or at
// once if none is out. Leases hold a plain pointer: no reference count is touched per lease.
//
// Note [Hand-off]
// Waiters queue in arrival order and each sleeps on its own condition variable, so a release
// wakes at most one thread and an unlock never scans the queue. A released instance goes to
// the idle list and the oldest waiter is woken to take it; a thread that arrives meanwhile
// may take it first (as a plain mutex lets a newcomer in), which keeps throughput when leases
// are short. Once the oldest waiter has waited `kHandOffAfter`, every released instance, and
// every freed slot, is handed to it directly, so no waiter is passed over for long: waiters
// are served first come, first served, give or take that bound.
//
// Note [Signals after unlock]
// A waiter is signalled after the lock is released (`StateLock`), not under it: signalled
// under the lock, it would wake only to block on the lock again, one more sleep and wake per
// hand-off, which halved contended throughput. The waiter lives on its own stack and may leave
// (on a timeout, or woken by an earlier signal) before the signal is sent, so each pending
// signal is counted in the waiter, and a waiter does not leave while its count is not zero.
template <typename T>
class PoolState {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<T>>()>;
  using Destroyer = std::function<void(std::unique_ptr<T>)>;

  // Long enough that a waiter descheduled for a time slice does not turn every release into
  // a hand-off (at 1 ms, 4 threads on 2 cores ran at 0.6x the throughput of a plain pool);
  // short next to a model call.
  static constexpr absl::Duration kHandOffAfter = absl::Milliseconds(5);

  PoolState(int max_instances, Factory factory, Destroyer destroyer)
      : factory_(std::move(factory)),
        destroyer_(std::move(destroyer)),
        max_instances_(max_instances) {}

  PoolState(const PoolState&) = delete;
  PoolState& operator=(const PoolState&) = delete;

  absl::StatusOr<Lease<T>> Acquire(absl::Duration timeout, bool destroy_after_use)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<std::unique_ptr<T>> instance = Take(timeout);
    if (!instance.ok()) return instance.status();
    return Lease<T>(this, *std::move(instance), destroy_after_use);
  }

  void Release(std::unique_ptr<T> instance, bool destroy) noexcept ABSL_LOCKS_EXCLUDED(mu_) {
    bool last_use = false;
    {
      StateLock lock(this);
      --in_use_;
      if (!destroy && !shut_down_ && total_ <= max_instances_) {
        if (HeadIsStarving()) {
          Waiter* waiter = PopOldestWaiter();
          waiter->instance = std::move(instance);
          ++in_use_;
          Wake(waiter, Grant::kInstance);
        } else {
          idle_.push_back(std::move(instance));
          OfferIdleToOldest();
        }
        return;
      }
      --total_;
      ++destroyed_;
      GrantFreedSlots();
      last_use = abandoned_ && in_use_ == 0;
    }
    DestroyInstance(std::move(instance));
    if (last_use) delete this;
  }

  void Resize(int max_instances) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::unique_ptr<T>> doomed;
    {
      StateLock lock(this);
      max_instances_ = max_instances;
      while (total_ > max_instances_ && !idle_.empty()) {
        doomed.push_back(PopIdle());
        --total_;
        ++destroyed_;
      }
      GrantFreedSlots();
    }
    for (auto& instance : doomed) DestroyInstance(std::move(instance));
  }

  absl::StatusOr<Lease<T>> AcquireIdle(bool destroy_after_use) ABSL_LOCKS_EXCLUDED(mu_) {
    std::unique_ptr<T> instance;
    {
      StateLock lock(this);
      if (shut_down_) return absl::CancelledError("the model pool has shut down");
      if (idle_.empty() || HeadIsStarving()) {
        return absl::NotFoundError("no idle instance in the model pool");
      }
      ++in_use_;
      waits_.Record(absl::ZeroDuration());
      instance = PopIdle();
    }
    return Lease<T>(this, std::move(instance), destroy_after_use);
  }

  absl::StatusOr<Lease<T>> AddInstance(const Factory& factory, bool destroy_after_use)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      StateLock lock(this);
      if (shut_down_) return absl::CancelledError("the model pool has shut down");
      ++total_;
      ++in_use_;
      max_instances_ = std::max(max_instances_, total_);
    }
    absl::StatusOr<std::unique_ptr<T>> made = Create(factory);
    if (!made.ok()) return made.status();
    return Lease<T>(this, *std::move(made), destroy_after_use);
  }

  int DestroyIdle(int max_count) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::unique_ptr<T>> doomed;
    {
      StateLock lock(this);
      // The least recently used first: they are at the front.
      const size_t count = std::min(idle_.size(), static_cast<size_t>(std::max(0, max_count)));
      doomed.assign(std::make_move_iterator(idle_.begin()),
                    std::make_move_iterator(idle_.begin() + static_cast<std::ptrdiff_t>(count)));
      idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(count));
      total_ -= static_cast<int>(doomed.size());
      destroyed_ += doomed.size();
      GrantFreedSlots();
    }
    for (auto& instance : doomed) DestroyInstance(std::move(instance));
    return static_cast<int>(doomed.size());
  }

  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::unique_ptr<T>> doomed;
    {
      StateLock lock(this);
      shut_down_ = true;
      while (Waiter* waiter = PopOldestWaiter()) Wake(waiter, Grant::kCancelled);
      doomed.swap(idle_);
      total_ -= static_cast<int>(doomed.size());
      destroyed_ += doomed.size();
    }
    for (auto& instance : doomed) DestroyInstance(std::move(instance));
  }

  // Shuts down for good; the state frees itself now or with the last lease.
  void Abandon() ABSL_LOCKS_EXCLUDED(mu_) {
    Shutdown();
    bool unused = false;
    {
      StateLock lock(this);
      mu_.Await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return threads_waiting_ == 0; });
      abandoned_ = true;
      unused = in_use_ == 0;
    }
    if (unused) delete this;
  }

  PoolStats Counts() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);  // wakes no one
    return CountsLocked();
  }

  PoolStats Stats() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    PoolStats stats = CountsLocked();
    stats.acquire_wait_p50 = waits_.Percentile(0.50);
    stats.acquire_wait_p99 = waits_.Percentile(0.99);
    return stats;
  }

 private:
  PoolStats CountsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    PoolStats stats;
    stats.available = static_cast<int>(idle_.size());
    stats.in_use = in_use_;
    stats.total = total_;
    stats.max_instances = max_instances_;
    stats.waiting = waiting_;
    stats.created = created_;
    stats.destroyed = destroyed_;
    stats.failed_creations = failed_creations_;
    stats.timeouts = timeouts_;
    return stats;
  }

  enum class Grant { kNone, kRetry, kInstance, kCreate, kCancelled };

  // One blocked acquirer, on its own stack, linked into the queue while it waits.
  struct Waiter {
    CondVar cv;
    std::atomic<int> signals_in_flight{0};  // see Note [Signals after unlock]
    Grant grant = Grant::kNone;
    std::unique_ptr<T> instance;
    absl::Time since;
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };

  ~PoolState() = default;  // see Abandon() and Release()

  // Holds `mu_`; on leaving, unlocks it and then signals the waiters woken meanwhile.
  class ABSL_SCOPED_LOCKABLE StateLock {
   public:
    explicit StateLock(PoolState* state) ABSL_EXCLUSIVE_LOCK_FUNCTION(state->mu_) : state_(state) {
      state_->mu_.Lock();
    }
    StateLock(const StateLock&) = delete;
    StateLock& operator=(const StateLock&) = delete;
    ~StateLock() ABSL_UNLOCK_FUNCTION() {
      if (state_->to_signal_.empty()) {
        state_->mu_.Unlock();
        return;
      }
      absl::InlinedVector<Waiter*, 2> woken;
      woken.swap(state_->to_signal_);
      state_->mu_.Unlock();
      for (Waiter* waiter : woken) {
        waiter->cv.Signal();
        waiter->signals_in_flight.fetch_sub(1, std::memory_order_release);
      }
    }

   private:
    PoolState* const state_;
  };

  // An instance for the caller, or null when the caller was given a slot to create one in.
  absl::StatusOr<std::unique_ptr<T>> Take(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      StateLock lock(this);
      if (shut_down_) return absl::CancelledError("the model pool has shut down");
      if (!idle_.empty() && !HeadIsStarving()) {
        ++in_use_;
        waits_.Record(absl::ZeroDuration());
        return PopIdle();
      }
      if (head_ == nullptr && total_ < max_instances_) {
        ++total_;
        ++in_use_;
        waits_.Record(absl::ZeroDuration());
      } else {
        if (timeout <= absl::ZeroDuration()) return BusyError(timeout);  // a try, not a wait
        absl::StatusOr<std::unique_ptr<T>> waited = WaitInLine(timeout);
        if (!waited.ok() || *waited != nullptr) return waited;
      }
    }
    return Create(factory_);
  }

  absl::StatusOr<std::unique_ptr<T>> WaitInLine(absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Waiter waiter;
    waiter.since = absl::Now();
    const absl::Time deadline = waiter.since + timeout;
    Enqueue(&waiter);
    ++threads_waiting_;
    absl::StatusOr<std::unique_ptr<T>> result;
    for (;;) {
      SignalWokenNow();  // this thread is about to sleep: it will not leave a StateLock soon
      const bool timed_out = mu_.WaitWithDeadline(&waiter.cv, deadline);
      if (waiter.grant == Grant::kRetry) {
        waiter.grant = Grant::kNone;
        if (!idle_.empty()) {
          Unlink(&waiter);
          ++in_use_;
          result = PopIdle();
          OfferIdleToOldest();
          break;
        }
      }
      if (waiter.grant == Grant::kInstance) {
        result = std::move(waiter.instance);
        break;
      }
      if (waiter.grant == Grant::kCreate) {
        result = std::unique_ptr<T>();
        break;
      }
      if (waiter.grant == Grant::kCancelled) {
        result = absl::CancelledError("the model pool shut down while waiting for an instance");
        break;
      }
      if (timed_out || absl::Now() >= deadline) {
        Unlink(&waiter);
        ++timeouts_;
        OfferIdleToOldest();
        result = BusyError(timeout);
        break;
      }
    }
    waits_.Record(absl::Now() - waiter.since);
    --threads_waiting_;
    // A releaser may still be signalling this waiter (it has unlocked but not yet signalled).
    while (waiter.signals_in_flight.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    return result;
  }

  // Signals, with the lock held, the waiters this thread has woken so far.
  void SignalWokenNow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Waiter* waiter : to_signal_) {
      waiter->cv.Signal();
      waiter->signals_in_flight.fetch_sub(1, std::memory_order_release);
    }
    to_signal_.clear();
  }

  // Runs `factory` for a slot already counted in `total_` and `in_use_`.
  absl::StatusOr<std::unique_ptr<T>> Create(const Factory& factory) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<std::unique_ptr<T>> made =
        CallCatching("model pool factory", [&factory] { return factory(); });
    if (made.ok() && *made == nullptr) {
      made = absl::InternalError("the model pool's factory returned no instance");
    }
    StateLock lock(this);
    if (!made.ok()) {
      --total_;
      --in_use_;
      ++failed_creations_;
      GrantFreedSlots();
      return made.status();
    }
    ++created_;
    return made;
  }

  void DestroyInstance(std::unique_ptr<T> instance) noexcept ABSL_LOCKS_EXCLUDED(mu_) {
    if (instance == nullptr) return;
    try {
      if (destroyer_) {
        destroyer_(std::move(instance));
      } else {
        instance.reset();
      }
    } catch (const std::exception& e) {
      Log(LogSeverity::kError, absl::StrCat("destroying a pooled instance threw: ", e.what()));
    } catch (...) {
      Log(LogSeverity::kError, "destroying a pooled instance threw");
    }
  }

  bool HeadIsStarving() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return head_ != nullptr && absl::Now() - head_->since >= kHandOffAfter;
  }

  // Wakes the oldest waiter to take an idle instance, unless it is already awake for one.
  void OfferIdleToOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!idle_.empty() && head_ != nullptr && head_->grant == Grant::kNone) {
      Wake(head_, Grant::kRetry);
    }
  }

  // Gives slots below the limit to the oldest waiters, who create instances in them.
  void GrantFreedSlots() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (shut_down_) return;
    while (total_ < max_instances_ && head_ != nullptr) {
      ++total_;
      ++in_use_;
      Wake(PopOldestWaiter(), Grant::kCreate);
    }
  }

  // The signal goes out when the lock is released: see Note [Signals after unlock].
  void Wake(Waiter* waiter, Grant grant) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiter->grant = grant;
    waiter->signals_in_flight.fetch_add(1, std::memory_order_relaxed);
    to_signal_.push_back(waiter);
  }

  std::unique_ptr<T> PopIdle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<T> instance = std::move(idle_.back());
    idle_.pop_back();
    return instance;
  }

  absl::Status BusyError(absl::Duration timeout) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::DeadlineExceededError(
        absl::StrCat("no model instance became free within ", absl::FormatDuration(timeout), " (",
                     in_use_, " of at most ", max_instances_, " in use, ", waiting_, " waiting)"));
  }

  void Enqueue(Waiter* waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiter->prev = tail_;
    waiter->next = nullptr;
    (tail_ ? tail_->next : head_) = waiter;
    tail_ = waiter;
    ++waiting_;
  }

  void Unlink(Waiter* waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    (waiter->prev ? waiter->prev->next : head_) = waiter->next;
    (waiter->next ? waiter->next->prev : tail_) = waiter->prev;
    waiter->prev = waiter->next = nullptr;
    --waiting_;
  }

  Waiter* PopOldestWaiter() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Waiter* waiter = head_;
    if (waiter != nullptr) Unlink(waiter);
    return waiter;
  }

  const Factory factory_;
  const Destroyer destroyer_;

  mutable Mutex mu_;
  std::vector<std::unique_ptr<T>> idle_ ABSL_GUARDED_BY(mu_);  // most recently used last
  Waiter* head_ ABSL_GUARDED_BY(mu_) = nullptr;                // the oldest waiter
  Waiter* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::InlinedVector<Waiter*, 2> to_signal_ ABSL_GUARDED_BY(mu_);  // woken, not yet signalled
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;                            // waiters in the queue
  int threads_waiting_ ABSL_GUARDED_BY(mu_) = 0;  // threads in WaitInLine, queued or leaving
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int max_instances_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t destroyed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_creations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t timeouts_ ABSL_GUARDED_BY(mu_) = 0;
  WaitHistogram waits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pool_internal
}  // namespace modelpool

#endif  // MODELPOOL_POOL_INTERNAL_POOL_STATE_H_
