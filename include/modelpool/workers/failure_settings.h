#ifndef MODELPOOL_WORKERS_FAILURE_SETTINGS_H_
#define MODELPOOL_WORKERS_FAILURE_SETTINGS_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "modelpool/base/settings.h"

namespace modelpool {

// FailureSettings
//
// How a `WorkerPool` survives faults: restarts, hung requests, health, circuit breakers and
// out-of-memory errors. The README's "Failure handling" section says what each fault does.
// `FromEnv()` reads the variables named below.
struct FailureSettings {
  // A model that fails to load on a device, or whose instance there is dropped as unhealthy
  // (a failed deep check, a hung request), is loaded again after `restart_backoff_base`,
  // doubling with each failure in a row up to `restart_backoff_cap`, each delay shortened by up
  // to `restart_jitter` of itself at random so that restarts do not move in step. After
  // `restart_max_attempts` failures in a row the device gives the model up (until
  // `PreloadModel()`). `MODELPOOL_RESTART_BACKOFF_BASE`, `MODELPOOL_RESTART_BACKOFF_CAP`,
  // `MODELPOOL_RESTART_JITTER`, `MODELPOOL_RESTART_MAX_ATTEMPTS`.
  absl::Duration restart_backoff_base = absl::Seconds(1);
  absl::Duration restart_backoff_cap = absl::Minutes(1);
  double restart_jitter = 0.2;
  int restart_max_attempts = 5;

  // How long a request may run before it ends with `DeadlineExceeded` and its worker is
  // replaced (`SubmitOptions::execution_timeout` overrides it per request); infinite: no limit.
  // `MODELPOOL_EXECUTION_TIMEOUT` (0 or a negative value: no limit).
  absl::Duration execution_timeout = absl::InfiniteDuration();

  // How often each loaded model is checked on each device with a one-row request (0: only on
  // demand, `CheckHealth()`, and after a request fails as a broken instance would), and how long
  // a check may take. `MODELPOOL_HEALTH_CHECK_INTERVAL`, `MODELPOOL_HEALTH_CHECK_TIMEOUT`.
  absl::Duration health_check_interval = absl::Minutes(5);
  absl::Duration health_check_timeout = absl::Seconds(30);
  // A worker in one call (a request, a load, a check) longer than this is reported unhealthy.
  // `MODELPOOL_LIVENESS_TIMEOUT`.
  absl::Duration liveness_timeout = absl::Minutes(5);
  // A device whose budget is used beyond this fraction is under memory pressure: its workers
  // and models are reported degraded. `MODELPOOL_MEMORY_PRESSURE`.
  double memory_pressure = 0.95;
  // A model whose recent p99 latency exceeds its baseline (the p99 of its first
  // `latency_window` requests) this many times is reported degraded; 0: never.
  // `MODELPOOL_LATENCY_FACTOR`.
  double latency_factor = 3.0;
  int latency_window = 200;

  // The circuit breaker of a model on a device opens after `breaker_failures` failures in a row
  // (0: never), or when at least `breaker_min_requests` requests ended within `breaker_window`
  // and `breaker_error_rate` of them failed (0: never). Only failures of the model count (an
  // exception, an internal error, a hung request), not bad input. While open, the model's
  // requests go to its other devices, or fail at once with `Unavailable` when none is left;
  // after `breaker_cooldown` up to `breaker_probes` requests probe the device, and that many
  // successes close the circuit. `MODELPOOL_BREAKER_FAILURES`, `MODELPOOL_BREAKER_ERROR_RATE`,
  // `MODELPOOL_BREAKER_MIN_REQUESTS`, `MODELPOOL_BREAKER_WINDOW`, `MODELPOOL_BREAKER_COOLDOWN`,
  // `MODELPOOL_BREAKER_PROBES`.
  int breaker_failures = 5;
  double breaker_error_rate = 0.5;
  int breaker_min_requests = 20;
  absl::Duration breaker_window = absl::Minutes(1);
  absl::Duration breaker_cooldown = absl::Seconds(30);
  int breaker_probes = 3;

  // Whether a request that runs out of device memory is retried: the device's cached memory is
  // freed and the batch is split in two, down to one row; a row that alone does not fit fails
  // (`ResourceExhausted`), the others succeed. `MODELPOOL_OOM_SPLIT`.
  bool oom_split = true;

  // FailureSettings::FromEnv()
  //
  // `base` with every variable above that is set (as `lookup` says) applied; a malformed value
  // is `InvalidArgument` naming the variable.
  static absl::StatusOr<FailureSettings> FromEnv(FailureSettings base,
                                                 const Settings::EnvLookup& lookup);

  // `InvalidArgument` naming the first field out of range.
  absl::Status Validate() const;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_FAILURE_SETTINGS_H_
