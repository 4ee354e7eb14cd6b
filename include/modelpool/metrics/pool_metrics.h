#ifndef MODELPOOL_METRICS_POOL_METRICS_H_
#define MODELPOOL_METRICS_POOL_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "modelpool/workers/worker_pool_listener.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace modelpool {

namespace metrics_internal {
struct Families;
struct Gauges;
class Forwarder;
}  // namespace metrics_internal

// PoolMetrics
//
// Prometheus metrics of a worker pool, in a `prometheus::Registry` (prometheus-cpp's core
// library; built when `MODELPOOL_WITH_PROMETHEUS` is on). Counted as the pool reports them
// (`WorkerPoolListener`):
//   modelpool_requests_total{model,outcome}          outcome: succeeded, failed, cancelled, expired
//   modelpool_queue_wait_seconds{model}               submission to start (requests that ran)
//   modelpool_compute_seconds{model}                  start to end (requests that ran)
//   modelpool_request_duration_seconds{model}         submission to end (every request)
//   modelpool_batch_requests{model}, modelpool_batch_rows{model}, modelpool_batch_tokens{model}
//                                                     per call a worker made (joined requests)
//   modelpool_tokens_total{model}                     tokens processed
// Read from `GenericWorkerPool::Stats()` when collected (`Collect()`, `TextExposition()`,
// `Refresh()`):
//   modelpool_queue_depth, modelpool_model_queued{model}, modelpool_model_running{model},
//   modelpool_loaded_instances{model,device}, modelpool_memory_{budget,used,free}_bytes{device},
//   modelpool_device_free_bytes{device} (GPUs only), modelpool_{loads,evictions,unloads,
//   switches}_total{model}, modelpool_workers{device,state}; failures:
//   modelpool_{restarts,hung_requests,out_of_memory,oom_split_retries,merged_requests,
//   fallbacks,health_checks_failed}_total{model}, modelpool_model_health{model,level},
//   modelpool_circuit_state{model,device,state} (1 for the current level or state, 0 for the
//   others), modelpool_circuit_openings_total{model,device}.
//
// The application either serves `TextExposition()` itself, or registers this object as a
// `prometheus::Collectable` with its own exposer (prometheus-cpp's pull library), or takes
// `registry()` to add metrics of its own (then call `Refresh()` before each scrape). The pool
// must outlive this object. Thread-safe.
class PoolMetrics : public WorkerPoolListener, public prometheus::Collectable {
 public:
  // Listens to `pool` and registers the families above in `registry` (a new registry when
  // null). `InvalidArgument` if `registry` already holds one of those names as another type
  // or with other labels.
  static absl::StatusOr<std::unique_ptr<PoolMetrics>> Create(
      GenericWorkerPool& pool, std::shared_ptr<prometheus::Registry> registry = nullptr);

  PoolMetrics(const PoolMetrics&) = delete;
  PoolMetrics& operator=(const PoolMetrics&) = delete;
  // Stops listening to the pool.
  ~PoolMetrics() override;

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // Reads the pool's stats into the gauges and the stats' counters.
  void Refresh() const;

  // `Refresh()`, then every family of `registry()` in the Prometheus text format (0.0.4).
  std::string TextExposition() const;

  // `Refresh()`, then the families of `registry()`.
  std::vector<prometheus::MetricFamily> Collect() const override;

  void OnJobEnded(const JobInfo& job) override;
  void OnBatchRun(const BatchInfo& batch) override;

 private:
  PoolMetrics(GenericWorkerPool& pool, std::shared_ptr<prometheus::Registry> registry,
              std::unique_ptr<metrics_internal::Families> families);

  GenericWorkerPool& pool_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<metrics_internal::Families> families_;
  std::unique_ptr<metrics_internal::Gauges> gauges_;
  // What the pool holds as its listener: it forwards here until this object goes.
  std::shared_ptr<metrics_internal::Forwarder> forwarder_;
};

}  // namespace modelpool

#endif  // MODELPOOL_METRICS_POOL_METRICS_H_
