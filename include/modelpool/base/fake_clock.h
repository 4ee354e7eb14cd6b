#ifndef MODELPOOL_BASE_FAKE_CLOCK_H_
#define MODELPOOL_BASE_FAKE_CLOCK_H_

#include "absl/time/time.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/internal/listener_set.h"
#include "modelpool/base/internal/mutex.h"

namespace modelpool {

// FakeClock
//
// A clock that stands still until `Advance()` moves it, for tests of what depends on time
// (keep-alive, aging, switches per hour, deadlines) without waiting. Thread-safe.
//
// Example:
//   FakeClock clock;
//   auto pool = GenericWorkerPool::Create({..., .clock = &clock});
//   clock.Advance(absl::Minutes(6));  // idle models past a 5-minute keep-alive unload now
class FakeClock : public Clock {
 public:
  // Starts at an arbitrary fixed time (2001-09-09).
  FakeClock() = default;
  explicit FakeClock(absl::Time start) : now_(start) {}

  absl::Time Now() const override;
  // `InfinitePast()` for a time already reached, `InfiniteFuture()` otherwise: only `Advance()`
  // gets there, and it wakes the listeners.
  absl::Time RealTimeOf(absl::Time t) const override;
  void AddListener(ClockListener* listener) override { listeners_.Add(listener); }
  void RemoveListener(ClockListener* listener) override { listeners_.Remove(listener); }

  // Moves the clock forward by `duration` (a negative one is ignored), then tells the listeners.
  // Returns the time the jump reached.
  absl::Time Advance(absl::Duration duration);

 private:
  mutable Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'000'000'000);
  base_internal::ListenerSet<ClockListener> listeners_;
};

}  // namespace modelpool

#endif  // MODELPOOL_BASE_FAKE_CLOCK_H_
