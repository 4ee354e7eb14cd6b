#ifndef MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_
#define MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/workers/health.h"
#include "modelpool/workers/job.h"
#include "modelpool/workers/worker_pool_stats.h"

namespace modelpool {

// Instances of a model loaded, unloaded or evicted on a device.
struct ModelEvent {
  std::string model_id;
  Device device;
  int instances = 1;
  absl::Time at;  // in the pool clock's time
};

struct WorkerStateChange {
  int worker = 0;
  Device device;
  std::string model_id;  // the model it serves or served last
  WorkerState from = WorkerState::kStarting;
  WorkerState to = WorkerState::kStarting;
  absl::Time at;
  std::string reason;  // for kRestarting, kFailed and kStopped: why
};

struct CircuitChange {
  std::string model_id;
  Device device;
  CircuitState from = CircuitState::kClosed;
  CircuitState to = CircuitState::kClosed;
  absl::Time at;
  std::string reason;
};

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
// Hears what happens in a worker pool (`GenericWorkerPool::AddListener()`): models loaded,
// unloaded after their keep-alive or evicted for another load; workers changing state; circuit
// breakers opening, half-opening and closing; jobs ending; calls run. Calls come one at a time, in
// the order the events happened, from whichever pool thread is free to deliver them, with no lock
// of the pool held: a listener may call the pool (a call that delivers events then leaves them to
// the call in progress). An exception a listener throws is caught and logged. Keep them quick: a
// worker may be the one delivering. Override what you need.
class WorkerPoolListener {
 public:
  virtual ~WorkerPoolListener() = default;
  virtual void OnModelLoaded(const ModelEvent& event) {}
  virtual void OnModelUnloaded(const ModelEvent& event) {}
  virtual void OnModelEvicted(const ModelEvent& event) {}
  virtual void OnWorkerStateChanged(const WorkerStateChange& change) {}
  virtual void OnCircuitChanged(const CircuitChange& change) {}
  // Every job once, when it ends (succeeded, failed, cancelled or expired; refusals at
  // submission included).
  virtual void OnJobEnded(const JobInfo& job) {}
  // Every call that ran requests, after it returned.
  virtual void OnBatchRun(const BatchInfo& batch) {}
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_POOL_LISTENER_H_
