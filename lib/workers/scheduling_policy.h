#ifndef MODELPOOL_LIB_WORKERS_SCHEDULING_POLICY_H_
#define MODELPOOL_LIB_WORKERS_SCHEDULING_POLICY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lib/workers/job_queue.h"
#include "modelpool/devices/memory_governor.h"

namespace modelpool::workers_internal {

// SchedulerView
//
// What a policy sees of the scheduler while it decides. Valid only during the call, which the
// scheduler makes holding its lock; a policy keeps nothing of it.
class SchedulerView {
 public:
  virtual absl::Time now() const = 0;
  virtual absl::Duration aging_bound() const = 0;
  virtual const JobQueue& queue() const = 0;
  // The model `worker` serves or served last; empty if none.
  virtual const std::string& current_model(int worker) const = 0;
  // Whether `worker` may take a job of `model` now: the model runs on its device, the limits
  // (instances, concurrency, switches per hour) allow it, and an instance is idle there or may
  // be loaded (no other load on the device, memory not known to be short, no failed load).
  virtual bool CanTake(int worker, const std::string& model) const = 0;
  // Whether taking a job of `model` means a load for `worker` (it holds none, none is idle).
  virtual bool NeedsLoad(int worker, const std::string& model) const = 0;
  // Whether a free worker elsewhere is better placed to take `model`: it has an idle instance,
  // or its device is preferred, has room without evicting, or fewer tokens queued. The scheduler
  // then wakes that worker.
  virtual bool BetterPlacedElsewhere(int worker, const std::string& model) const = 0;

  // Whether `job` has waited the aging bound.
  bool Starving(const QueuedJob& job) const { return now() - job.queued_at >= aging_bound(); }

 protected:
  ~SchedulerView() = default;
};

// SchedulingPolicy
//
// The decisions that make a scheduling policy: which job a free worker takes, which idle
// instances a load may evict and in which order. The scheduler enforces what holds for every
// policy (limits, memory, deadlines, one load per device, exactly-once endings).
class SchedulingPolicy {
 public:
  virtual ~SchedulingPolicy() = default;
  virtual absl::string_view name() const = 0;
  // The job `worker` takes next, or null to leave it waiting.
  virtual QueuedJob* Choose(const SchedulerView& view, int worker) const = 0;
  // Whether idle instances of `model` may be evicted to load an instance for `job` (null: for a
  // preload).
  virtual bool MayEvict(const SchedulerView& view, const std::string& model,
                        const QueuedJob* job) const = 0;
  // The eviction order: the highest score goes first.
  virtual double EvictionScore(const EvictionCandidate& candidate, absl::Time now) const = 0;
};

// "modelpool" or "fifo-lru"; `InvalidArgument` otherwise.
absl::StatusOr<std::unique_ptr<SchedulingPolicy>> MakeSchedulingPolicy(absl::string_view name);

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_SCHEDULING_POLICY_H_
