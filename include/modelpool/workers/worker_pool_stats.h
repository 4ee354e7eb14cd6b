#ifndef MODELPOOL_WORKERS_WORKER_POOL_STATS_H_
#define MODELPOOL_WORKERS_WORKER_POOL_STATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/workers/fault_injector.h"
#include "modelpool/workers/health.h"

namespace modelpool {

// What a worker is doing. Every change goes through one place in the scheduler, which checks it
// against the transitions allowed (`IsWorkerTransitionAllowed()`), stamps its time, logs it at
// debug level and tells the listeners.
enum class WorkerState {
  kStarting,    // its thread has not yet looked for work
  kIdle,        // waiting for work it can take
  kLoading,     // loading a model for a request
  kBusy,        // running a request or a health check
  kSwitching,   // handing back one model's instance to take another's work
  kDraining,    // the pool shuts down: running what is queued until the drain deadline
  kRestarting,  // a load failed or its instance was dropped as unhealthy: waiting for the
                // restart's backoff; or its thread hung and a new one takes its place
  kFailed,      // the last restart allowed failed: its device gives that model up (it still
                // takes other models' work)
  kStopped,     // shut down
};

// "starting", "idle", "loading", "busy", "switching", "draining", "restarting", "failed",
// "stopped".
const char* WorkerStateName(WorkerState state);
// Whether a worker may go from `from` to `to`.
bool IsWorkerTransitionAllowed(WorkerState from, WorkerState to);

// One change of a worker's state.
struct WorkerTransition {
  WorkerState from = WorkerState::kStarting;
  WorkerState to = WorkerState::kStarting;
  absl::Time at;
  std::string reason;
};

struct WorkerStats {
  int id = 0;
  Device device;
  // The model it serves or served last; empty if none yet.
  std::string model_id;
  WorkerState state = WorkerState::kStarting;
  absl::Time state_since;
  // Its last few changes of state, oldest first.
  std::vector<WorkerTransition> transitions;
  // Unhealthy while restarting, failed, or in one call past `liveness_timeout`; degraded under
  // memory pressure on its device.
  Health health;
  // Whether it holds (leases) an instance of its model now; a held instance is never evicted.
  bool holds_instance = false;
  // Requests waiting for this worker in particular (round-robin balancing).
  int queued = 0;
  int switches_this_hour = 0;
  uint64_t switches = 0;
  uint64_t completed = 0;  // requests it ran, whatever their outcome
  uint64_t errors = 0;     // of those, how many ended with an error
  uint64_t hung = 0;       // requests and checks it gave up on (their thread was replaced)
  uint64_t threads = 1;    // threads that have served it (a hung one is replaced)
  absl::Time last_activity;
  std::string last_error;
};

struct ModelStats {
  struct Placement {
    Device device;
    int instances = 0;
    int idle = 0;
  };
  // One device the model may run on: its health, circuit breaker and restarts there.
  struct OnDevice {
    Device device;
    Health health;
    CircuitState circuit = CircuitState::kClosed;
    absl::Time circuit_since = absl::InfinitePast();
    uint64_t circuit_openings = 0;
    // Failures in a row (failed loads, instances dropped as unhealthy) and when the next load
    // may start; `gave_up` once `restart_max_attempts` failed in a row (until `PreloadModel()`).
    int restart_failures = 0;
    absl::Time next_restart = absl::InfinitePast();
    bool gave_up = false;
    std::string last_failure;
  };
  std::string model_id;
  // Where instances are loaded.
  std::vector<Placement> loaded;
  // Every device it may run on.
  std::vector<OnDevice> on_devices;
  // Unhealthy when no device can serve it; degraded when some cannot, or one is under memory
  // pressure or probing a circuit, or it is slow against its own baseline.
  Health health;
  int workers = 0;  // serving it now (holding an instance or loading one)
  int queued = 0;
  int running = 0;
  uint64_t submitted = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;     // ran and returned an error (or threw), or could not be loaded
  uint64_t expired = 0;    // deadline passed before they started
  uint64_t cancelled = 0;  // by `Cancel()` or at shutdown
  uint64_t rejected = 0;   // refused at submission (queue full, shut down, wrong type)
  uint64_t loads = 0;      // instances this pool loaded
  uint64_t evictions = 0;  // its idle instances evicted to make room for another load
  uint64_t unloads = 0;    // its idle instances unloaded after their keep-alive
  uint64_t switches = 0;   // workers that switched to it from another model
  uint64_t restarts = 0;   // loads after a failure (a restart), successful or not
  uint64_t hung = 0;       // requests that ran past their execution timeout
  uint64_t checks = 0;     // deep checks run
  uint64_t checks_failed = 0;
  uint64_t out_of_memory = 0;  // model calls that ran out of device memory
  uint64_t split_retries = 0;  // retries of part of a batch after running out of memory
  uint64_t merged = 0;         // requests that joined an identical one in flight
  uint64_t fallbacks = 0;      // requests handed to the fallback model (they end there)
  absl::Time last_used = absl::InfinitePast();
  // The p99 of its first `latency_window` requests, and of its last; zero until measured.
  absl::Duration latency_baseline;
  absl::Duration latency_p99;
};

struct WorkerPoolStats {
  // Every device's budget and what is loaded there (all models that share the governor).
  std::vector<DeviceMemoryStats> devices;
  std::vector<ModelStats> models;
  std::vector<WorkerStats> workers;
  int queue_depth = 0;
  // The worst of its workers' and models' health, with their reasons.
  Health health;
  // Calls given up on (hung, or running at shutdown past the drain deadline) that have not
  // returned yet; their threads are not the workers' any more.
  int stuck_calls = 0;
  // Changes of worker state that `IsWorkerTransitionAllowed()` refused (0 unless a bug).
  uint64_t invalid_transitions = 0;
  // Listener calls and request callbacks that threw.
  uint64_t callback_errors = 0;
  // What the fault injector did, if the pool has one.
  std::optional<FaultInjector::Counts> faults;
  // Requests are queued and every worker waits: only time (deadlines, aging, switch limits) or
  // memory released outside this pool moves them.
  bool waiting_on_time = false;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_POOL_STATS_H_
