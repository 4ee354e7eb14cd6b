#ifndef MODELPOOL_LIB_WORKERS_RESTART_BACKOFF_H_
#define MODELPOOL_LIB_WORKERS_RESTART_BACKOFF_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "modelpool/workers/failure_settings.h"

namespace modelpool::workers_internal {

// The delay before the next try after `failures` failures in a row (1 or more): the base
// doubled with each failure after the first, at most the cap, then shortened by `jitter` of
// itself times `unit_random` (in [0, 1)).
absl::Duration BackoffDelay(const FailureSettings& settings, int failures, double unit_random);

// RestartBackoff
//
// Failures in a row of one model on one device (failed loads, instances dropped as unhealthy)
// and when it may be loaded there again. A success (a request or a check that passes) ends
// the run of failures. Not thread-safe: the scheduler's lock guards it.
class RestartBackoff {
 public:
  // Records a failure at `now`; returns whether that was the last attempt allowed (the device
  // then gives the model up).
  bool Fail(const FailureSettings& settings, absl::Time now, const absl::Status& cause,
            double unit_random);
  void Succeed();
  // Forgets the failures (`PreloadModel()` asks for a fresh start).
  void Reset() { *this = RestartBackoff(); }

  int failures() const { return failures_; }
  // Whether a failure waits for its restart (loads are held back until `next_try()`).
  bool pending(absl::Time now) const { return failures_ > 0 && now < next_try_; }
  // When the next load may start; `InfinitePast()` without failures.
  absl::Time next_try() const { return next_try_; }
  const absl::Status& cause() const { return cause_; }
  // Loads after a failure: each restart.
  bool restarting() const { return failures_ > 0; }

 private:
  int failures_ = 0;
  absl::Time next_try_ = absl::InfinitePast();
  absl::Status cause_;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_RESTART_BACKOFF_H_
