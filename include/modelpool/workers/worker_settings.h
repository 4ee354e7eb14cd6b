#ifndef MODELPOOL_WORKERS_WORKER_SETTINGS_H_
#define MODELPOOL_WORKERS_WORKER_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/workers/failure_settings.h"

namespace modelpool {

// How a worker pool picks the worker for a request.
enum class LoadBalancing {
  kRoundRobin,  // each worker serving the model in turn
  kLeastBusy,   // whichever worker is free first
};

// WorkerSettings
//
// How a `WorkerPool` runs: its workers and its scheduler. (Where models run and how much memory
// they get is `Settings`.)
//
// Example:
//   absl::StatusOr<modelpool::WorkerSettings> workers = modelpool::WorkerSettings::FromEnv();
//   if (!workers.ok()) return workers.status();  // names the bad variable
struct WorkerSettings {
  // Worker threads per device. `MODELPOOL_WORKERS_PER_DEVICE`.
  int workers_per_device = 1;
  // `MODELPOOL_LOAD_BALANCING`: round_robin or least_busy.
  LoadBalancing load_balancing = LoadBalancing::kLeastBusy;
  // Whether the pool runs worker threads; when false its calls run on the calling thread, on
  // the managers directly, with the same results. `MODELPOOL_WORKER_POOL`.
  bool worker_pool = true;
  // The scheduling policy: "modelpool" (priority classes, aging, workers that keep their model,
  // eviction by recency and frequency) or "fifo-lru" (first come first served, evict the least
  // recently used). `MODELPOOL_SCHEDULING_POLICY`.
  std::string policy = "modelpool";
  // How long an idle instance stays loaded after its last use: 0 unloads it right after use, a
  // negative duration keeps it until it is evicted. `MODELPOOL_KEEP_ALIVE_GPU`,
  // `MODELPOOL_KEEP_ALIVE_CPU` ("5m", "300", "-1").
  absl::Duration keep_alive_gpu = absl::Minutes(5);
  absl::Duration keep_alive_cpu = absl::Minutes(30);
  // A request that has waited this long ranks above every class but `kCritical`, so that
  // `kBatch` work is not starved (unless `kCritical` work alone fills the pool).
  // `MODELPOOL_AGING_BOUND`.
  absl::Duration aging_bound = absl::Seconds(30);
  // The most times one worker may change models within an hour; 0 for no limit. A worker at the
  // limit serves only its model until the hour's oldest switch is an hour old.
  // `MODELPOOL_MAX_SWITCHES_PER_HOUR`.
  int max_switches_per_hour = 0;
  // The most instances of one model over all devices; 0 for the manager's `max_instances`.
  // `MODELPOOL_MAX_INSTANCES_PER_MODEL`.
  int max_instances_per_model = 0;
  // The most workers serving one model at once; 0 for no limit.
  // `MODELPOOL_MAX_CONCURRENT_PER_MODEL`.
  int max_concurrent_per_model = 0;
  // How many ended jobs `Poll()` and `Wait()` still know. `MODELPOOL_JOB_HISTORY`.
  int job_history = 10000;
  // Restarts, hung requests, health, circuit breakers, out-of-memory errors.
  FailureSettings failures;
  // Requests joined together: a worker that takes a request that may join others (the
  // `WorkerPool`'s embedding and summarization requests) runs queued requests of the same model
  // and options with it, in one call, up to `max_batch_tokens` tokens (as the requests count
  // them). A worker that finds none waiting waits up to `batch_window` (real time) for some to
  // come; zero turns joining off. `MODELPOOL_BATCH_WINDOW` ("2ms", "0"),
  // `MODELPOOL_MAX_BATCH_TOKENS`. See Note [Joined requests] in lib/workers/scheduler_join.cc.
  absl::Duration batch_window = absl::Milliseconds(2);
  int64_t max_batch_tokens = 16384;

  // WorkerSettings::FromEnv()
  //
  // The defaults, or `base`, with every variable above that is set (in the process environment,
  // or as `lookup` says) applied on top. A malformed value is `InvalidArgument` naming the
  // variable.
  static absl::StatusOr<WorkerSettings> FromEnv();
  static absl::StatusOr<WorkerSettings> FromEnv(WorkerSettings base,
                                                const Settings::EnvLookup& lookup = nullptr);

  // `InvalidArgument` when a field is out of range or the policy is unknown.
  absl::Status Validate() const;
};

// How one registered model is scheduled; unset fields take the `WorkerSettings`.
struct ModelOptions {
  enum class Affinity {
    kAny,      // any device the manager uses
    kPrefer,   // `device` when a worker there can take the model, else any
    kRequire,  // only `device`
  };
  Affinity affinity = Affinity::kAny;
  Device device;
  // Overrides the keep-alive of the device kind the instance is on.
  std::optional<absl::Duration> keep_alive;
  // Override `max_instances_per_model`, `max_concurrent_per_model` and `max_batch_tokens`; 0
  // keeps them.
  int max_instances = 0;
  int max_concurrent = 0;
  int64_t max_batch_tokens = 0;
  // Another registered model of the same type (such as the same folder on the CPU) that takes a
  // request this model cannot run: one that fits none of its devices, or that runs out of device
  // memory even split to single rows. Empty: none.
  std::string fallback_model;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_SETTINGS_H_
