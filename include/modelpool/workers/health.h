#ifndef MODELPOOL_WORKERS_HEALTH_H_
#define MODELPOOL_WORKERS_HEALTH_H_

#include <string>

#include "absl/time/time.h"

namespace modelpool {

// How well a worker, a model or the whole pool serves.
enum class HealthLevel {
  kHealthy,    // serving as it should
  kDegraded,   // serving, with a warning: memory pressure, slow, a circuit probing, a restart
  kUnhealthy,  // not serving: restarting, failed, hung, or its circuit open
};

// "healthy", "degraded", "unhealthy".
const char* HealthLevelName(HealthLevel level);

struct Health {
  HealthLevel level = HealthLevel::kHealthy;
  // Why it is not healthy, in words; empty when healthy.
  std::string reason;
  // The last deep check (a one-row request on a loaded instance) and whether it passed;
  // `InfinitePast()` if none ran yet.
  absl::Time last_check = absl::InfinitePast();
  bool last_check_passed = true;
};

// A circuit breaker's state for one model on one device.
enum class CircuitState {
  kClosed,    // requests flow
  kOpen,      // requests go to other devices, or fail at once with `Unavailable`
  kHalfOpen,  // after the cool-down: a few requests probe; successes close it, a failure opens it
};

// "closed", "open", "half-open".
const char* CircuitStateName(CircuitState state);

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_HEALTH_H_
