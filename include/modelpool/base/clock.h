#ifndef MODELPOOL_BASE_CLOCK_H_
#define MODELPOOL_BASE_CLOCK_H_

#include "absl/time/time.h"

namespace modelpool {

// Hears the jumps of a clock that moves only when told (see `Clock::AddListener()`).
class ClockListener {
 public:
  // Called on the thread that moved the clock, with none of the clock's locks held.
  virtual void OnClockJump() = 0;

 protected:
  ~ClockListener() = default;
};

// Clock
//
// Where the worker pool's scheduler and the memory governor read the time: deadlines, aging,
// keep-alive, switches per hour, when an instance was last used. `Clock::Real()` reads
// `absl::Now()`; tests inject a `FakeClock` and the scheduler simulator a compressed clock, so
// that what takes minutes runs in milliseconds. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() const = 0;

  // Clock::RealTimeOf()
  //
  // The real time (as `absl::Now()` reads it) at which this clock will read `t`: when a thread
  // waiting for `t` should wake. A clock that moves only when told returns
  // `absl::InfiniteFuture()` for a time it has not reached, and tells its listeners when it
  // jumps instead.
  virtual absl::Time RealTimeOf(absl::Time t) const = 0;

  // Clock::AddListener()
  //
  // `listener` hears every jump from now until `RemoveListener(listener)`, which waits for a
  // call in progress to return. Clocks that follow real time never jump and keep no listeners.
  virtual void AddListener(ClockListener* listener) {}
  virtual void RemoveListener(ClockListener* listener) {}

  // The process's clock: `absl::Now()`.
  static Clock& Real();
};

}  // namespace modelpool

#endif  // MODELPOOL_BASE_CLOCK_H_
