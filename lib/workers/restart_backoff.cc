#include "lib/workers/restart_backoff.h"

#include <algorithm>

#include "modelpool/base/status.h"

namespace modelpool::workers_internal {

absl::Duration BackoffDelay(const FailureSettings& settings, int failures, double unit_random) {
  absl::Duration delay = settings.restart_backoff_base;
  for (int i = 1; i < failures && delay < settings.restart_backoff_cap; ++i) delay *= 2;
  delay = std::min(delay, settings.restart_backoff_cap);
  const double cut = settings.restart_jitter * std::clamp(unit_random, 0.0, 1.0);
  return delay - delay * cut;
}

bool RestartBackoff::Fail(const FailureSettings& settings, absl::Time now,
                          const absl::Status& cause, double unit_random) {
  ++failures_;
  cause_ = UnsharedCopy(cause);
  next_try_ = now + BackoffDelay(settings, failures_, unit_random);
  return failures_ >= settings.restart_max_attempts;
}

void RestartBackoff::Succeed() {
  failures_ = 0;
  next_try_ = absl::InfinitePast();
  cause_ = absl::OkStatus();
}

}  // namespace modelpool::workers_internal
