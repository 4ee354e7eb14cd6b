#ifndef MODELPOOL_BASE_MUTEX_H_
#define MODELPOOL_BASE_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MODELPOOL_TSAN 1
#endif
#endif
#if !defined(MODELPOOL_TSAN) && defined(__SANITIZE_THREAD__)
#define MODELPOOL_TSAN 1
#endif

#ifdef MODELPOOL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace modelpool {

// Mutex
//
// `absl::Mutex` with the same thread-safety annotations, plus the happens-before edges that
// ThreadSanitizer needs when Abseil itself was not built with it.
//
// Note [Why a Mutex wrapper]
// Distribution builds of Abseil are not compiled with -fsanitize=thread, so TSan cannot see
// the synchronization inside `absl::Mutex` and reports every access to guarded state as a
// race. This class tells TSan "acquire" after every lock and "release" before every unlock,
// including the unlock and relock inside `Await*`. Without TSan it is `absl::Mutex`, inline.
// Waits take a predicate (a lambda) instead of an `absl::Condition` for the same reason.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.Unlock();
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

  // Waits until `predicate()` is true; the lock is released while waiting. `predicate` runs
  // with the lock held, on any thread, and must only read state this mutex guards.
  template <typename Predicate>
  void Await(const Predicate& predicate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    const Annotated<Predicate> annotated{this, &predicate};
    const absl::Condition condition(&annotated);
    Releasing();
    mu_.Await(condition);
    Acquired();
  }

  // As `Await()`, but gives up at `deadline`; returns whether `predicate()` is true.
  template <typename Predicate>
  bool AwaitWithDeadline(const Predicate& predicate, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    const Annotated<Predicate> annotated{this, &predicate};
    const absl::Condition condition(&annotated);
    Releasing();
    const bool holds = mu_.AwaitWithDeadline(condition, deadline);
    Acquired();
    return holds;
  }

 private:
  void Acquired() {
#ifdef MODELPOOL_TSAN
    __tsan_acquire(this);
#endif
  }
  void Releasing() {
#ifdef MODELPOOL_TSAN
    __tsan_release(this);
#endif
  }

  // Abseil evaluates a waiter's predicate with the lock held, on the waiter's thread or on
  // the thread that unlocks, at points where our own annotations have already said
  // "released": so each evaluation is bracketed as a critical section of its own.
  template <typename Predicate>
  struct Annotated {
    bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      mu->Acquired();
      const bool holds = (*predicate)();
      mu->Releasing();
      return holds;
    }
    Mutex* mu;
    const Predicate* predicate;
  };

  absl::Mutex mu_;
};

// MutexLock
//
// Holds a `Mutex` for the rest of the scope, as `absl::MutexLock` does.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

 private:
  Mutex* const mu_;
};

}  // namespace modelpool

#endif  // MODELPOOL_BASE_MUTEX_H_
