#include "modelpool/metrics/pool_metrics.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "prometheus/counter.h"
#include "tests/workers/fake_model.h"

namespace modelpool {
namespace {

using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;
using ::modelpool::testing::FakeRequest;

struct Setup {
  // `breaker_failures`: failures in a row that open the model's circuit (0: never).
  explicit Setup(int breaker_failures = 0) {
    inventory = FakeModelManager::Inventory(1);
    manager = FakeModelManager::Create({.gpus = 1}, inventory);
    REQUIRE(manager != nullptr);
    WorkerSettings workers;
    workers.workers_per_device = 2;
    // The fake model's failures are the model's own; they must not open its circuit here.
    workers.failures.breaker_failures = breaker_failures;
    workers.failures.breaker_error_rate = 0;
    workers.failures.breaker_cooldown = absl::Hours(1);
    auto created = GenericWorkerPool::Create(
        {.settings = Settings{}, .workers = workers, .inventory = inventory});
    REQUIRE(created.ok());
    pool = *std::move(created);
    REQUIRE(pool->RegisterModel<FakeModel>("fake", manager).ok());
  }

  std::future<absl::StatusOr<int>> Submit(FakeRequest request, SubmitOptions options = {}) {
    options.tokens = 5;
    return pool->SubmitTask<FakeModel, int>(
        "fake", [request](FakeModel& m) { return m.Run(request); }, options);
  }

  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<FakeModelManager> manager;
  std::unique_ptr<GenericWorkerPool> pool;
};

// The value of the sample of `name` whose labels include `labels`: a counter's or gauge's
// value, a histogram's sample count; -1 when there is none.
double Sample(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& family : families) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      int matched = 0;
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        auto it = labels.find(label.name);
        if (it != labels.end() && it->second == label.value) ++matched;
      }
      if (matched != static_cast<int>(labels.size())) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return metric.counter.value;
        case prometheus::MetricType::Gauge:
          return metric.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(metric.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return -1;
}

TEST_CASE("Requests are counted by model and outcome, with their latencies and tokens") {
  Setup s;
  auto metrics = PoolMetrics::Create(*s.pool);
  REQUIRE(metrics.ok());
  std::vector<std::future<absl::StatusOr<int>>> results;
  for (int i = 0; i < 7; ++i) results.push_back(s.Submit({.value = i}));
  for (int i = 0; i < 3; ++i) results.push_back(s.Submit({.fail = true}));
  results.push_back(s.Submit({}, {.deadline = absl::InfinitePast()}));
  for (auto& result : results) (void)result.get();
  const std::vector<prometheus::MetricFamily> families = (*metrics)->Collect();
  const std::map<std::string, std::string> fake{{"model", "fake"}};
  CHECK(Sample(families, "modelpool_requests_total",
               {{"model", "fake"}, {"outcome", "succeeded"}}) == 7);
  CHECK(Sample(families, "modelpool_requests_total", {{"model", "fake"}, {"outcome", "failed"}}) ==
        3);
  CHECK(Sample(families, "modelpool_requests_total", {{"model", "fake"}, {"outcome", "expired"}}) ==
        1);
  CHECK(Sample(families, "modelpool_request_duration_seconds", fake) == 11);
  CHECK(Sample(families, "modelpool_queue_wait_seconds", fake) == 10);
  CHECK(Sample(families, "modelpool_compute_seconds", fake) == 10);
  CHECK(Sample(families, "modelpool_batch_requests", fake) == 10);
  CHECK(Sample(families, "modelpool_tokens_total", fake) == 50);
  CHECK(Sample(families, "modelpool_loads_total", fake) >= 1);
  CHECK(Sample(families, "modelpool_loaded_instances", fake) >= 1);
  CHECK(Sample(families, "modelpool_queue_depth") == 0);
  CHECK(Sample(families, "modelpool_memory_budget_bytes", {{"device", "cuda:0"}}) > 0);
  double workers = 0;
  // Every state: a worker that just handed its instance back may be switching or starting.
  for (const char* state : {"starting", "idle", "loading", "busy", "switching", "draining",
                            "restarting", "failed", "stopped"}) {
    workers += std::max(0.0, Sample(families, "modelpool_workers", {{"state", state}}));
  }
  CHECK(workers == 2);
}

TEST_CASE("A model's circuit, health and failures are in the metrics") {
  Setup s(/*breaker_failures=*/2);
  auto metrics = PoolMetrics::Create(*s.pool);
  REQUIRE(metrics.ok());
  const std::map<std::string, std::string> fake{{"model", "fake"}};
  const std::map<std::string, std::string> on_gpu{{"model", "fake"}, {"device", "cuda:0"}};
  auto with = [](std::map<std::string, std::string> labels, const char* key, const char* value) {
    labels[key] = value;
    return labels;
  };
  REQUIRE(s.Submit({.value = 1}).get().ok());
  std::vector<prometheus::MetricFamily> families = (*metrics)->Collect();
  CHECK(Sample(families, "modelpool_circuit_state", with(on_gpu, "state", "closed")) == 1);
  CHECK(Sample(families, "modelpool_circuit_state", with(on_gpu, "state", "open")) == 0);
  CHECK(Sample(families, "modelpool_circuit_openings_total", on_gpu) == 0);
  CHECK(Sample(families, "modelpool_model_health", with(fake, "level", "healthy")) == 1);
  CHECK(Sample(families, "modelpool_restarts_total", fake) == 0);

  // Two failures in a row open the circuit of the only device: the model is unhealthy.
  for (int i = 0; i < 2; ++i) CHECK_FALSE(s.Submit({.throw_error = true}).get().ok());
  families = (*metrics)->Collect();
  CHECK(Sample(families, "modelpool_circuit_state", with(on_gpu, "state", "closed")) == 0);
  CHECK(Sample(families, "modelpool_circuit_state", with(on_gpu, "state", "open")) == 1);
  CHECK(Sample(families, "modelpool_circuit_openings_total", on_gpu) == 1);
  CHECK(Sample(families, "modelpool_model_health", with(fake, "level", "healthy")) == 0);
  CHECK(Sample(families, "modelpool_model_health", with(fake, "level", "unhealthy")) == 1);
  // Counted once however often it is scraped.
  CHECK(Sample((*metrics)->Collect(), "modelpool_circuit_openings_total", on_gpu) == 1);
}

TEST_CASE("The text exposition holds every family, and counters do not count twice") {
  Setup s;
  auto metrics = PoolMetrics::Create(*s.pool);
  REQUIRE(metrics.ok());
  REQUIRE(s.Submit({.value = 1}).get().ok());
  const std::string first = (*metrics)->TextExposition();
  const std::string second = (*metrics)->TextExposition();
  CHECK(first.find("# TYPE modelpool_requests_total counter") != std::string::npos);
  CHECK(first.find("# TYPE modelpool_compute_seconds histogram") != std::string::npos);
  CHECK(first.find("modelpool_requests_total{model=\"fake\",outcome=\"succeeded\"} 1") !=
        std::string::npos);
  CHECK(second.find("modelpool_loads_total{model=\"fake\"} 1") != std::string::npos);
}

TEST_CASE("The application's registry takes the families beside its own") {
  Setup s;
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("app_requests_total")
      .Help("the app's")
      .Register(*registry)
      .Add({})
      .Increment(3);
  auto metrics = PoolMetrics::Create(*s.pool, registry);
  REQUIRE(metrics.ok());
  CHECK((*metrics)->registry() == registry);
  REQUIRE(s.Submit({.value = 1}).get().ok());
  (*metrics)->Refresh();
  const std::vector<prometheus::MetricFamily> families = registry->Collect();
  CHECK(Sample(families, "app_requests_total") == 3);
  CHECK(Sample(families, "modelpool_requests_total", {{"outcome", "succeeded"}}) == 1);
  CHECK(Sample(families, "modelpool_loads_total", {{"model", "fake"}}) == 1);
}

TEST_CASE("A registry that holds one of the names as another type is refused") {
  Setup s;
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge().Name("modelpool_requests_total").Help("x").Register(*registry);
  auto metrics = PoolMetrics::Create(*s.pool, registry);
  REQUIRE_FALSE(metrics.ok());
  CHECK(metrics.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(metrics.status().message().find("modelpool_requests_total") != std::string::npos);
}

TEST_CASE("Requests from many threads while scraping are all counted once") {
  Setup s;
  auto metrics = PoolMetrics::Create(*s.pool);
  REQUIRE(metrics.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) (void)(*metrics)->TextExposition();
  });
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!s.Submit({.value = i, .fail = i % 5 == 0}).get().ok()) ++failures[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  done = true;
  scraper.join();
  int failed = 0;
  for (int f : failures) failed += f;
  const std::vector<prometheus::MetricFamily> families = (*metrics)->Collect();
  CHECK(failed == kThreads * kPerThread / 5);
  CHECK(Sample(families, "modelpool_requests_total", {{"outcome", "failed"}}) == failed);
  CHECK(Sample(families, "modelpool_requests_total", {{"outcome", "succeeded"}}) ==
        kThreads * kPerThread - failed);
  CHECK(Sample(families, "modelpool_tokens_total", {{"model", "fake"}}) ==
        5 * kThreads * kPerThread);
}

}  // namespace
}  // namespace modelpool
