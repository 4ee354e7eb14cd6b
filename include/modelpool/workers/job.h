#ifndef MODELPOOL_WORKERS_JOB_H_
#define MODELPOOL_WORKERS_JOB_H_

#include <array>
#include <cstdint>
#include <future>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"

namespace modelpool {

// The classes requests are ordered by, over the whole pool: every queued `kCritical` request
// runs before any `kHigh` one, and so on, except that a request waiting longer than the aging
// bound outranks every class but `kCritical` (see `WorkerSettings::aging_bound`).
enum class Priority { kCritical, kHigh, kNormal, kLow, kBatch };

// "critical", "high", "normal", "low", "batch".
absl::string_view PriorityName(Priority priority);
// The inverse of `PriorityName()`; `InvalidArgument` naming the text otherwise.
absl::StatusOr<Priority> ParsePriority(absl::string_view name);

// How a request is scheduled.
struct SubmitOptions {
  Priority priority_class = Priority::kNormal;
  // Within a class, higher runs first; then the earlier deadline; then the earlier submission.
  int priority = 0;
  // A request that has not started by then ends with `DeadlineExceeded` without running. In the
  // time of the pool's clock (`absl::Now()` unless a clock was injected).
  absl::Time deadline = absl::InfiniteFuture();
  // What the request costs, in tokens (0: unknown, counted as 1). Loads go to the device with
  // the fewest tokens queued.
  int64_t tokens = 0;
  // How long it may run once started: past it, it ends with `DeadlineExceeded`, its worker is
  // replaced by a new thread and whatever the call returns later is discarded. Unset: the pool's
  // `FailureSettings::execution_timeout`.
  std::optional<absl::Duration> execution_timeout;
  // `WorkerPool`'s requests only: whether a request identical to one in flight (same model,
  // texts and options, and the same scheduling options) joins it instead of running again; it
  // then shares that job's id (cancelling it cancels both) and gets a copy of its result.
  bool merge_identical = true;
};

// Identifies a request in the pool that took it; never 0.
using JobId = uint64_t;

// Where a request is: kPending (submitted) -> kQueued -> kLoading (its model is being loaded
// for it) -> kRunning -> one of the final states. A request waiting for memory goes back from
// kLoading to kQueued.
enum class JobState {
  kPending,
  kQueued,
  kLoading,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kExpired,
};
inline constexpr int kJobStates = 8;

// "pending", "queued", "loading", "running", "succeeded", "failed", "cancelled", "expired".
absl::string_view JobStateName(JobState state);
// Succeeded, failed, cancelled or expired: the request has ended.
bool IsFinal(JobState state);

// What the pool knows of one request.
struct JobInfo {
  JobId id = 0;
  std::string model_id;
  Priority priority = Priority::kNormal;
  JobState state = JobState::kPending;
  // Its outcome once final: OK, the model's error, or why it did not run.
  absl::Status status;
  int64_t tokens = 0;
  // The worker and device it ran or is loading on; -1 and nullopt before.
  int worker = -1;
  std::optional<Device> device;
  absl::Time deadline = absl::InfiniteFuture();
  // When it last entered each state, indexed by `JobState`; `InfinitePast()` for states it has
  // not been in. In the pool clock's time.
  std::array<absl::Time, kJobStates> entered = {};

  absl::Time at(JobState s) const { return entered[static_cast<int>(s)]; }
};

// A submitted request: its id, for `Poll()`, `Wait()` and `Cancel()`, and its result.
template <typename R>
struct JobHandle {
  JobId id = 0;
  std::future<absl::StatusOr<R>> result;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_JOB_H_
