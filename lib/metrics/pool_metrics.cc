#include "modelpool/metrics/pool_metrics.h"

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/text_serializer.h"

namespace modelpool {
namespace metrics_internal {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Hands the pool's events on to a `PoolMetrics` until it detaches: the pool may still be
// delivering an event when the `PoolMetrics` stops listening, and `Detach()` waits for it.
class Forwarder final : public WorkerPoolListener {
 public:
  explicit Forwarder(PoolMetrics* to) : to_(to) {}
  void Detach() {
    absl::MutexLock lock(&mu_);
    to_ = nullptr;
  }
  void OnJobEnded(const JobInfo& job) override {
    absl::MutexLock lock(&mu_);
    if (to_ != nullptr) to_->OnJobEnded(job);
  }
  void OnBatchRun(const BatchInfo& batch) override {
    absl::MutexLock lock(&mu_);
    if (to_ != nullptr) to_->OnBatchRun(batch);
  }

 private:
  absl::Mutex mu_;
  PoolMetrics* to_ ABSL_GUARDED_BY(mu_);
};

struct Families {
  Family<Counter>& requests;
  Family<Histogram>& queue_wait;
  Family<Histogram>& compute;
  Family<Histogram>& end_to_end;
  Family<Histogram>& batch_requests;
  Family<Histogram>& batch_rows;
  Family<Histogram>& batch_tokens;
  Family<Counter>& tokens;
  Family<Gauge>& queue_depth;
  Family<Gauge>& model_queued;
  Family<Gauge>& model_running;
  Family<Gauge>& loaded_instances;
  Family<Gauge>& memory_budget;
  Family<Gauge>& memory_used;
  Family<Gauge>& memory_free;
  Family<Gauge>& device_free;
  Family<Counter>& loads;
  Family<Counter>& evictions;
  Family<Counter>& unloads;
  Family<Counter>& switches;
  Family<Gauge>& workers;
  Family<Counter>& restarts;
  Family<Counter>& hung;
  Family<Counter>& out_of_memory;
  Family<Counter>& split_retries;
  Family<Counter>& merged;
  Family<Counter>& fallbacks;
  Family<Counter>& checks_failed;
  Family<Gauge>& model_health;
  Family<Gauge>& circuit_state;
  Family<Counter>& circuit_openings;
};

// What `Refresh()` last read, so that counters grow by the stats' differences and gauges of
// what is gone fall to zero.
struct Gauges {
  absl::Mutex mu;
  std::map<std::pair<std::string, std::string>, Gauge*> loaded ABSL_GUARDED_BY(mu);
  std::map<std::pair<std::string, std::string>, Gauge*> workers ABSL_GUARDED_BY(mu);
  std::map<std::pair<Family<Counter>*, prometheus::Labels>, uint64_t> counted ABSL_GUARDED_BY(mu);
};

}  // namespace metrics_internal

namespace {

using metrics_internal::Families;
using prometheus::Histogram;

const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries* buckets = new Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return *buckets;
}

const Histogram::BucketBoundaries& PowersOfTwo(int up_to_exponent) {
  static const auto* buckets = [] {
    auto* all = new std::map<int, Histogram::BucketBoundaries>;
    for (int e : {8, 10, 16}) {
      for (int i = 0; i <= e; ++i) (*all)[e].push_back(static_cast<double>(int64_t{1} << i));
    }
    return all;
  }();
  return buckets->at(up_to_exponent);
}

// Registers one family, naming it in the error of a registry that refuses it.
template <typename Builder>
auto& Register(Builder builder, prometheus::Registry& registry, const char* name,
               const char* help) {
  try {
    return builder.Name(name).Help(help).Register(registry);
  } catch (const std::exception& e) {
    throw std::invalid_argument(absl::StrCat(name, ": ", e.what()));
  }
}

std::unique_ptr<Families> RegisterFamilies(prometheus::Registry& registry) {
  auto counter = [&](const char* name,
                     const char* help) -> prometheus::Family<prometheus::Counter>& {
    return Register(prometheus::BuildCounter(), registry, name, help);
  };
  auto gauge = [&](const char* name, const char* help) -> prometheus::Family<prometheus::Gauge>& {
    return Register(prometheus::BuildGauge(), registry, name, help);
  };
  auto histogram = [&](const char* name,
                       const char* help) -> prometheus::Family<prometheus::Histogram>& {
    return Register(prometheus::BuildHistogram(), registry, name, help);
  };
  return std::unique_ptr<Families>(new Families{
      counter("modelpool_requests_total", "Requests that ended, by model and outcome"),
      histogram("modelpool_queue_wait_seconds", "From submission to start, of requests that ran"),
      histogram("modelpool_compute_seconds", "From start to end, of requests that ran"),
      histogram("modelpool_request_duration_seconds", "From submission to end, of every request"),
      histogram("modelpool_batch_requests", "Requests run in one call (joined requests)"),
      histogram("modelpool_batch_rows", "Items (texts) in one call"),
      histogram("modelpool_batch_tokens", "Tokens in one call"),
      counter("modelpool_tokens_total", "Tokens processed"),
      gauge("modelpool_queue_depth", "Requests queued over the whole pool"),
      gauge("modelpool_model_queued", "Requests queued, by model"),
      gauge("modelpool_model_running", "Requests running, by model"),
      gauge("modelpool_loaded_instances", "Instances loaded, by model and device"),
      gauge("modelpool_memory_budget_bytes", "The memory budget of each device"),
      gauge("modelpool_memory_used_bytes", "Memory charged to loaded models, by device"),
      gauge("modelpool_memory_free_bytes", "Budget left, by device"),
      gauge("modelpool_device_free_bytes", "Free memory as the driver reports it (GPUs)"),
      counter("modelpool_loads_total", "Instances loaded, by model"),
      counter("modelpool_evictions_total", "Idle instances evicted for another load, by model"),
      counter("modelpool_unloads_total", "Idle instances unloaded after their keep-alive"),
      counter("modelpool_switches_total", "Workers that switched to the model from another"),
      gauge("modelpool_workers", "Worker threads, by device and state"),
      counter("modelpool_restarts_total", "Loads after a failure, by model"),
      counter("modelpool_hung_requests_total", "Requests that ran past their execution timeout"),
      counter("modelpool_out_of_memory_total", "Model calls that ran out of device memory"),
      counter("modelpool_oom_split_retries_total",
              "Parts of a batch retried after running out of memory"),
      counter("modelpool_merged_requests_total", "Requests that joined an identical one"),
      counter("modelpool_fallbacks_total", "Requests handed to the model's fallback model"),
      counter("modelpool_health_checks_failed_total", "Deep checks of an instance that failed"),
      gauge("modelpool_model_health",
            "1 for the model's health level (healthy, degraded, "
            "unhealthy), 0 for the others"),
      gauge("modelpool_circuit_state",
            "1 for the state of the model's circuit breaker on the "
            "device (closed, open, half-open), 0 for the others"),
      counter("modelpool_circuit_openings_total", "Times the circuit opened, by model and device"),
  });
}

// Counters follow the pool's stats, which only grow: each grows by what its stat grew since.
void CountUpTo(metrics_internal::Gauges& g, prometheus::Family<prometheus::Counter>& family,
               const prometheus::Labels& labels, uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g.mu) {
  uint64_t& seen = g.counted[{&family, labels}];
  prometheus::Counter& counter = family.Add(labels);
  if (now > seen) counter.Increment(static_cast<double>(now - seen));
  seen = now;
}

// One gauge per state under `label`, 1 for `current` and 0 for the others, so that a state
// left drops to 0.
template <typename State, typename NameOf>
void OneHot(prometheus::Family<prometheus::Gauge>& family, prometheus::Labels labels,
            const char* label, std::initializer_list<State> states, State current, NameOf name_of) {
  for (const State state : states) {
    labels[label] = name_of(state);
    family.Add(labels).Set(state == current ? 1 : 0);
  }
}

// Seconds from `from` to `to`, or a negative number when either is unknown.
double Seconds(absl::Time from, absl::Time to) {
  if (from == absl::InfinitePast() || to == absl::InfinitePast() || to < from) return -1;
  return absl::ToDoubleSeconds(to - from);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PoolMetrics>> PoolMetrics::Create(
    GenericWorkerPool& pool, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<Families> families;
  try {
    families = RegisterFamilies(*registry);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("PoolMetrics: the registry refuses modelpool's metric families: ", e.what()));
  }
  std::unique_ptr<PoolMetrics> metrics(
      new PoolMetrics(pool, std::move(registry), std::move(families)));
  metrics->forwarder_ = std::make_shared<metrics_internal::Forwarder>(metrics.get());
  pool.AddListener(metrics->forwarder_);
  return metrics;
}

PoolMetrics::PoolMetrics(GenericWorkerPool& pool, std::shared_ptr<prometheus::Registry> registry,
                         std::unique_ptr<Families> families)
    : pool_(pool),
      registry_(std::move(registry)),
      families_(std::move(families)),
      gauges_(std::make_unique<metrics_internal::Gauges>()) {}

PoolMetrics::~PoolMetrics() {
  pool_.RemoveListener(forwarder_.get());
  forwarder_->Detach();
}

void PoolMetrics::OnJobEnded(const JobInfo& job) {
  const std::string outcome(JobStateName(job.state));
  families_->requests.Add({{"model", job.model_id}, {"outcome", outcome}}).Increment();
  const prometheus::Labels model{{"model", job.model_id}};
  const absl::Time pending = job.at(JobState::kPending);
  const absl::Time running = job.at(JobState::kRunning);
  const absl::Time ended = job.at(job.state);
  if (const double s = Seconds(pending, ended); s >= 0) {
    families_->end_to_end.Add(model, LatencyBuckets()).Observe(s);
  }
  if (const double s = Seconds(pending, running); s >= 0) {
    families_->queue_wait.Add(model, LatencyBuckets()).Observe(s);
  }
  if (const double s = Seconds(running, ended); s >= 0) {
    families_->compute.Add(model, LatencyBuckets()).Observe(s);
  }
}

void PoolMetrics::OnBatchRun(const BatchInfo& batch) {
  const prometheus::Labels model{{"model", batch.model_id}};
  families_->batch_requests.Add(model, PowersOfTwo(8)).Observe(batch.requests);
  families_->batch_rows.Add(model, PowersOfTwo(10)).Observe(static_cast<double>(batch.rows));
  families_->batch_tokens.Add(model, PowersOfTwo(16)).Observe(static_cast<double>(batch.tokens));
  families_->tokens.Add(model).Increment(static_cast<double>(batch.tokens));
}

void PoolMetrics::Refresh() const {
  const WorkerPoolStats stats = pool_.Stats();
  metrics_internal::Gauges& g = *gauges_;
  absl::MutexLock lock(&g.mu);
  families_->queue_depth.Add({}).Set(stats.queue_depth);
  for (auto& [key, gauge] : g.loaded) gauge->Set(0);
  for (auto& [key, gauge] : g.workers) gauge->Set(0);
  for (const ModelStats& model : stats.models) {
    const prometheus::Labels labels{{"model", model.model_id}};
    families_->model_queued.Add(labels).Set(model.queued);
    families_->model_running.Add(labels).Set(model.running);
    CountUpTo(g, families_->loads, labels, model.loads);
    CountUpTo(g, families_->evictions, labels, model.evictions);
    CountUpTo(g, families_->unloads, labels, model.unloads);
    CountUpTo(g, families_->switches, labels, model.switches);
    CountUpTo(g, families_->restarts, labels, model.restarts);
    CountUpTo(g, families_->hung, labels, model.hung);
    CountUpTo(g, families_->out_of_memory, labels, model.out_of_memory);
    CountUpTo(g, families_->split_retries, labels, model.split_retries);
    CountUpTo(g, families_->merged, labels, model.merged);
    CountUpTo(g, families_->fallbacks, labels, model.fallbacks);
    CountUpTo(g, families_->checks_failed, labels, model.checks_failed);
    OneHot(families_->model_health, labels, "level",
           {HealthLevel::kHealthy, HealthLevel::kDegraded, HealthLevel::kUnhealthy},
           model.health.level, HealthLevelName);
    for (const ModelStats::OnDevice& on : model.on_devices) {
      const prometheus::Labels where{{"model", model.model_id}, {"device", on.device.ToString()}};
      OneHot(families_->circuit_state, where, "state",
             {CircuitState::kClosed, CircuitState::kOpen, CircuitState::kHalfOpen}, on.circuit,
             CircuitStateName);
      CountUpTo(g, families_->circuit_openings, where, on.circuit_openings);
    }
    for (const ModelStats::Placement& placement : model.loaded) {
      const std::string device = placement.device.ToString();
      prometheus::Gauge*& gauge = g.loaded[{model.model_id, device}];
      if (gauge == nullptr) {
        gauge = &families_->loaded_instances.Add({{"model", model.model_id}, {"device", device}});
      }
      gauge->Set(placement.instances);
    }
  }
  for (const DeviceMemoryStats& device : stats.devices) {
    const prometheus::Labels labels{{"device", device.device.ToString()}};
    families_->memory_budget.Add(labels).Set(static_cast<double>(device.budget_bytes));
    families_->memory_used.Add(labels).Set(static_cast<double>(device.used_bytes));
    families_->memory_free.Add(labels).Set(static_cast<double>(device.free_bytes));
    if (device.device_free_bytes >= 0) {
      families_->device_free.Add(labels).Set(static_cast<double>(device.device_free_bytes));
    }
  }
  for (const WorkerStats& worker : stats.workers) {
    const std::string device = worker.device.ToString();
    const std::string state = WorkerStateName(worker.state);
    prometheus::Gauge*& gauge = g.workers[{device, state}];
    if (gauge == nullptr) {
      gauge = &families_->workers.Add({{"device", device}, {"state", state}});
    }
    gauge->Increment();
  }
}

std::vector<prometheus::MetricFamily> PoolMetrics::Collect() const {
  Refresh();
  return registry_->Collect();
}

std::string PoolMetrics::TextExposition() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

}  // namespace modelpool
