#include "modelpool/base/clock.h"

#include "absl/time/clock.h"
#include "modelpool/base/fake_clock.h"

namespace modelpool {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  absl::Time RealTimeOf(absl::Time t) const override { return t; }
};

}  // namespace

Clock& Clock::Real() {
  static RealClock* const clock = new RealClock();
  return *clock;
}

absl::Time FakeClock::Now() const {
  MutexLock lock(&mu_);
  return now_;
}

absl::Time FakeClock::RealTimeOf(absl::Time t) const {
  return t <= Now() ? absl::InfinitePast() : absl::InfiniteFuture();
}

absl::Time FakeClock::Advance(absl::Duration duration) {
  absl::Time reached;
  {
    MutexLock lock(&mu_);
    if (duration > absl::ZeroDuration()) now_ += duration;
    reached = now_;
  }
  if (duration > absl::ZeroDuration()) {
    listeners_.ForEach([](ClockListener& listener) { listener.OnClockJump(); });
  }
  return reached;
}

}  // namespace modelpool
