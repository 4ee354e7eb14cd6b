#include "lib/workers/circuit_breaker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "modelpool/workers/internal/model_call.h"

namespace modelpool::workers_internal {

bool CountsAgainstModel(const absl::Status& status) {
  if (IsOutOfMemory(status)) return false;  // the batch's size, not the model
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

bool CircuitBreaker::Allows() const {
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kOpen:
      return false;
    case CircuitState::kHalfOpen:
      return probes_in_flight_ < probe_limit_;
  }
  return true;
}

bool CircuitBreaker::Start() {
  if (state_ != CircuitState::kHalfOpen) return false;
  ++probes_in_flight_;
  return true;
}

std::optional<CircuitBreaker::Change> CircuitBreaker::Record(const FailureSettings& settings,
                                                             absl::Time now, bool probe,
                                                             bool failure,
                                                             const std::string& cause) {
  probe_limit_ = settings.breaker_probes;
  if (probe && probes_in_flight_ > 0) --probes_in_flight_;
  switch (state_) {
    case CircuitState::kOpen:
      return std::nullopt;  // it started before the circuit opened
    case CircuitState::kHalfOpen:
      if (!probe) return std::nullopt;
      if (failure) {
        open_until_ = now + settings.breaker_cooldown;
        open_reason_ = absl::StrCat("a probe request failed: ", cause);
        return MoveTo(CircuitState::kOpen, now, open_reason_);
      }
      if (++probe_successes_ < settings.breaker_probes) return std::nullopt;
      return MoveTo(CircuitState::kClosed, now,
                    absl::StrCat(probe_successes_, " probe requests succeeded"));
    case CircuitState::kClosed:
      break;
  }
  consecutive_failures_ = failure ? consecutive_failures_ + 1 : 0;
  window_.emplace_back(now, failure);
  window_failures_ += failure ? 1 : 0;
  while (!window_.empty() && window_.front().first <= now - settings.breaker_window) {
    window_failures_ -= window_.front().second ? 1 : 0;
    window_.pop_front();
  }
  std::string reason;
  if (settings.breaker_failures > 0 && consecutive_failures_ >= settings.breaker_failures) {
    reason = absl::StrCat(consecutive_failures_, " failures in a row; the last: ", cause);
  } else if (failure && settings.breaker_error_rate > 0 &&
             static_cast<int>(window_.size()) >= std::max(1, settings.breaker_min_requests) &&
             window_failures_ >=
                 settings.breaker_error_rate * static_cast<double>(window_.size())) {
    reason =
        absl::StrCat(window_failures_, " of the last ", window_.size(), " requests within ",
                     absl::FormatDuration(settings.breaker_window), " failed; the last: ", cause);
  } else {
    return std::nullopt;
  }
  open_until_ = now + settings.breaker_cooldown;
  open_reason_ = reason;
  return MoveTo(CircuitState::kOpen, now, std::move(reason));
}

std::optional<CircuitBreaker::Change> CircuitBreaker::Tick(absl::Time now) {
  if (state_ != CircuitState::kOpen || now < open_until_) return std::nullopt;
  return MoveTo(CircuitState::kHalfOpen, now, "the cool-down has passed: probing");
}

absl::Time CircuitBreaker::reopens_at() const {
  return state_ == CircuitState::kOpen ? open_until_ : absl::InfiniteFuture();
}

CircuitBreaker::Change CircuitBreaker::MoveTo(CircuitState to, absl::Time now, std::string reason) {
  Change change{state_, to, std::move(reason)};
  state_ = to;
  since_ = now;
  consecutive_failures_ = 0;
  window_.clear();
  window_failures_ = 0;
  probe_successes_ = 0;
  if (to == CircuitState::kOpen) ++openings_;
  if (to != CircuitState::kHalfOpen) probes_in_flight_ = 0;
  return change;
}

}  // namespace modelpool::workers_internal
