#ifndef MODELPOOL_LIB_WORKERS_CIRCUIT_BREAKER_H_
#define MODELPOOL_LIB_WORKERS_CIRCUIT_BREAKER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "modelpool/workers/failure_settings.h"
#include "modelpool/workers/health.h"

namespace modelpool::workers_internal {

// Whether a request's error is the model's fault (an exception, an internal or device error),
// as opposed to its input's (`InvalidArgument`...) or the pool's (`Cancelled`...): such errors
// count against the model's circuit breaker, and make the pool check the instance.
bool CountsAgainstModel(const absl::Status& status);

// CircuitBreaker
//
// One model on one device: closed while its requests succeed; open after
// `breaker_failures` failures in a row, or an error rate of `breaker_error_rate` over at least
// `breaker_min_requests` requests within `breaker_window`; half-open after `breaker_cooldown`,
// when up to `breaker_probes` requests at once may probe it: that many successes close it, a
// failure opens it again. Requests that started before it opened do not count once it has.
// Not thread-safe: the scheduler's lock guards it.
class CircuitBreaker {
 public:
  struct Change {
    CircuitState from = CircuitState::kClosed;
    CircuitState to = CircuitState::kClosed;
    std::string reason;
  };

  CircuitState state() const { return state_; }
  absl::Time since() const { return since_; }
  // Whether a request may start now.
  bool Allows() const;
  // A request starts; returns whether it is a probe (the circuit is half-open).
  bool Start();
  // A request ended: `failure` if the model failed it. `probe` as `Start()` returned.
  std::optional<Change> Record(const FailureSettings& settings, absl::Time now, bool probe,
                               bool failure, const std::string& cause);
  // Open -> half-open once the cool-down has passed.
  std::optional<Change> Tick(absl::Time now);
  // When an open circuit half-opens; `InfiniteFuture()` otherwise.
  absl::Time reopens_at() const;
  uint64_t openings() const { return openings_; }
  // Why it last opened.
  const std::string& open_reason() const { return open_reason_; }

 private:
  Change MoveTo(CircuitState to, absl::Time now, std::string reason);

  CircuitState state_ = CircuitState::kClosed;
  absl::Time since_ = absl::InfinitePast();
  absl::Time open_until_ = absl::InfinitePast();
  int consecutive_failures_ = 0;
  std::deque<std::pair<absl::Time, bool>> window_;  // (end, failed) within the window
  int window_failures_ = 0;
  int probes_in_flight_ = 0;
  int probe_successes_ = 0;
  int probe_limit_ = 1;
  uint64_t openings_ = 0;
  std::string open_reason_;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_CIRCUIT_BREAKER_H_
