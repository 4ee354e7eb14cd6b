#ifndef MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_
#define MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/workers/job.h"

namespace modelpool {

// One call a worker made: a request, or requests joined together (see `Joinable`).
struct BatchInfo {
  std::string model_id;
  Device device;
  int worker = -1;  // -1 when the pool runs no worker threads
  // The requests run together, the items in them (texts, as the requests count them) and the
  // tokens processed (what the results say, else what the requests' `SubmitOptions` said).
  int requests = 0;
  int64_t rows = 0;
  int64_t tokens = 0;
  absl::Duration duration;  // the call itself, in real time
};

// WorkerPoolListener
//
// Told what a worker pool does, for metrics and logs. Calls come from the pool's threads (and
// from callers of `Submit`, `Cancel` and `Shutdown`), one at a time, without the pool's lock
// held: a listener may call `Stats()` and `Poll()`, but must not add or remove listeners, and
// should return quickly. A request's end is told before its caller gets the result.
class WorkerPoolListener {
 public:
  virtual ~WorkerPoolListener() = default;
  // Every request that ends (any outcome, refusals at submission included), once.
  virtual void OnJobEnded(const JobInfo& job) {}
  // Every call that ran requests, after it returned.
  virtual void OnBatchRun(const BatchInfo& batch) {}
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_
