// How a worker pool survives each fault on its own: failed loads restarted with backoff (on a
// fake clock), circuit breakers, hung requests, shutdown past a stuck call, out-of-memory
// retries, deep health checks and listeners that throw.
#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modelpool/base/fake_clock.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "tests/testing/eventually.h"
#include "tests/workers/fake_model.h"
#include "tests/workers/fault_world.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;
using ::modelpool::testing::FakeRequest;
using ::modelpool::testing::Get;
using ::modelpool::testing::NoBreakers;
using ::modelpool::testing::Ready;
using ::modelpool::testing::Result;
using ::modelpool::testing::World;

TEST_CASE("A failed load is restarted after a backoff that doubles, on the pool's clock") {
  FakeClock clock;
  FailureSettings failures = NoBreakers();
  failures.restart_backoff_base = absl::Seconds(10);
  failures.restart_backoff_cap = absl::Minutes(5);
  failures.restart_jitter = 0;
  auto faults = std::make_shared<FaultInjector>(std::vector<FaultRule>{
      {.kind = FaultKind::kFailLoad, .nth = 1}, {.kind = FaultKind::kFailLoad, .nth = 2}});
  World w(1, failures, faults, &clock);
  const absl::Time start = clock.Now();
  Result r = w.Submit({.value = 4});
  auto restart_failures = [&] { return w.Model().on_devices.at(0).restart_failures; };
  REQUIRE(Eventually([&] { return restart_failures() == 1; }));
  ModelStats m = w.Model();
  CHECK(m.on_devices[0].next_restart == start + absl::Seconds(10));
  CHECK(m.health.level == HealthLevel::kUnhealthy);
  CHECK(w.pool->Stats().workers[0].state == WorkerState::kRestarting);
  CHECK(Ready(r) == false);
  clock.Advance(absl::Seconds(10));
  REQUIRE(Eventually([&] { return restart_failures() == 2; }));
  CHECK(w.Model().on_devices[0].next_restart == start + absl::Seconds(30));  // 10 s, then 20 s
  clock.Advance(absl::Seconds(20));
  absl::StatusOr<int> result = Get(r);
  REQUIRE(result.ok());
  CHECK(*result == 8);
  m = w.Model();
  CHECK(m.restarts == 2);
  CHECK(m.loads == 1);
  CHECK(m.on_devices[0].restart_failures == 0);
  CHECK(w.manager->loads == 1);
  CHECK(faults->counts().failed_loads == 2);
}

TEST_CASE("A circuit opens after failures in a row, fails fast, and closes after probes") {
  FakeClock clock;
  FailureSettings failures;
  failures.breaker_failures = 2;
  failures.breaker_error_rate = 0;
  failures.breaker_cooldown = absl::Seconds(30);
  failures.breaker_probes = 1;
  World w(1, failures, nullptr, &clock);
  struct Circuits : WorkerPoolListener {
    std::mutex mu;
    std::vector<CircuitState> seen;
    void OnCircuitChanged(const CircuitChange& change) override {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(change.to);
    }
  };
  auto circuits = std::make_shared<Circuits>();
  w.pool->AddListener(circuits);
  for (int i = 0; i < 2; ++i) {
    Result thrown = w.Submit({.throw_error = true});
    CHECK(Get(thrown).status().code() == absl::StatusCode::kInternal);
  }
  ModelStats m = w.Model();
  CHECK(m.on_devices[0].circuit == CircuitState::kOpen);
  CHECK(m.on_devices[0].circuit_openings == 1);
  CHECK(m.health.level == HealthLevel::kUnhealthy);
  Result fast = w.Submit({.value = 1});
  const absl::StatusOr<int> failed_fast = Get(fast);
  CHECK(failed_fast.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(failed_fast.status().message()), Catch::Contains("circuit"));
  clock.Advance(absl::Seconds(30));
  REQUIRE(Eventually([&] { return w.Model().on_devices[0].circuit == CircuitState::kHalfOpen; }));
  Result probe = w.Submit({.value = 2});
  absl::StatusOr<int> probed = Get(probe);
  REQUIRE(probed.ok());
  CHECK(*probed == 4);
  CHECK(w.Model().on_devices[0].circuit == CircuitState::kClosed);
  REQUIRE(Eventually([&] {
    std::lock_guard<std::mutex> lock(circuits->mu);
    return circuits->seen.size() == 3;
  }));
  std::lock_guard<std::mutex> lock(circuits->mu);
  CHECK(circuits->seen == std::vector<CircuitState>{CircuitState::kOpen, CircuitState::kHalfOpen,
                                                    CircuitState::kClosed});
}

TEST_CASE("An open circuit sends the model's work to its other device") {
  FailureSettings failures;
  failures.breaker_failures = 1;
  failures.breaker_error_rate = 0;
  failures.breaker_cooldown = absl::Hours(1);
  // Every call on cuda:0 throws: its circuit opens at its first request.
  auto faults = std::make_shared<FaultInjector>(std::vector<FaultRule>{
      {.kind = FaultKind::kThrow, .device = Device::Cuda(0), .probability = 1}});
  World w(2, failures, faults);
  // Rounds of requests until cuda:0 has had one (the balancing decides where they go).
  int thrown = 0, ok = 0, rounds = 0;
  while (thrown == 0 && rounds++ < 100) {
    std::vector<Result> round;
    for (int i = 0; i < 10; ++i) round.push_back(w.Submit({.value = i}));
    for (auto& r : round) {
      const absl::StatusOr<int> result = Get(r);
      ok += result.ok() ? 1 : 0;
      thrown += result.status().code() == absl::StatusCode::kInternal ? 1 : 0;
    }
  }
  CHECK(thrown == 1);  // one worker per device, so one request ran before the circuit opened
  CHECK(ok == 10 * rounds - 1);
  REQUIRE(w.Model().on_devices[0].circuit == CircuitState::kOpen);
  std::vector<Result> after;
  for (int i = 0; i < 50; ++i) after.push_back(w.Submit({.value = i}));
  for (auto& r : after) CHECK(Get(r).ok());
  const ModelStats m = w.Model();
  CHECK(m.on_devices[0].circuit == CircuitState::kOpen);
  CHECK(m.on_devices[1].circuit == CircuitState::kClosed);
  CHECK(m.health.level == HealthLevel::kDegraded);
}

TEST_CASE("A hung request ends with DeadlineExceeded and its worker gets a new thread") {
  World w(1, NoBreakers());
  Result hung = w.SubmitGate({.execution_timeout = absl::Milliseconds(20)});
  const absl::StatusOr<int> ended = Get(hung);
  CHECK(ended.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK_THAT(std::string(ended.status().message()), Catch::Contains("execution timeout"));
  WorkerPoolStats stats = w.pool->Stats();
  CHECK(stats.workers[0].hung == 1);
  CHECK(stats.workers[0].threads == 2);
  CHECK(stats.stuck_calls == 1);
  CHECK(stats.models[0].hung == 1);
  // The new thread serves; the stuck one's instance is not handed to it.
  Result next = w.Submit({.value = 5});
  absl::StatusOr<int> served = Get(next);
  REQUIRE(served.ok());
  CHECK(*served == 10);
  CHECK(w.manager->loads == 2);
  w.Open();
  REQUIRE(Eventually([&] { return w.pool->Stats().stuck_calls == 0; }));
  stats = w.pool->Stats();
  CHECK(stats.models[0].failed == 1);
  CHECK(stats.models[0].succeeded == 1);
  CHECK(stats.invalid_transitions == 0);
}

TEST_CASE("Shutdown does not wait for a stuck call past its drain deadline") {
  World w(1, NoBreakers());
  Result stuck = w.SubmitGate();
  REQUIRE(Eventually([&] { return w.pool->Stats().workers[0].state == WorkerState::kBusy; }));
  Result queued = w.Submit({.value = 1});
  std::future<void> shutdown =
      std::async(std::launch::async, [&] { w.pool->Shutdown(absl::Milliseconds(50)); });
  const bool returned = shutdown.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  CHECK(returned);
  CHECK(Get(stuck).status().code() == absl::StatusCode::kCancelled);
  CHECK(Get(queued).status().code() == absl::StatusCode::kCancelled);
  CHECK(w.pool->Stats().workers[0].state == WorkerState::kStopped);
  w.Open();
}

TEST_CASE("A request that runs out of memory is retried after the cache is freed") {
  auto faults = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .nth = 1}});
  World w(1, NoBreakers(), faults);
  Result once = w.Submit({.value = 3});
  absl::StatusOr<int> retried = Get(once);
  REQUIRE(retried.ok());
  CHECK(*retried == 6);
  ModelStats m = w.Model();
  CHECK(m.out_of_memory == 1);
  CHECK(m.split_retries == 1);
  // Out of memory on every call: the request fails with ResourceExhausted, the circuit stays.
  auto always = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .probability = 1}});
  FailureSettings failures;
  failures.breaker_failures = 1;
  World v(1, failures, always);
  Result never = v.Submit({.value = 3});
  CHECK(Get(never).status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(v.Model().on_devices[0].circuit == CircuitState::kClosed);
}

TEST_CASE("A request that runs out of memory even split goes to the model's fallback, once") {
  auto faults = std::make_shared<FaultInjector>(std::vector<FaultRule>{
      {.kind = FaultKind::kOutOfMemory, .model = "primary", .probability = 1}});
  World w(1, NoBreakers(), faults);
  // The same model registered twice, as an application registers a folder on the GPU with its
  // CPU copy as the fallback.
  auto primary = FakeModelManager::Create({.gpus = 1}, w.inventory);
  auto backup = FakeModelManager::Create({.gpus = 1}, w.inventory);
  REQUIRE(primary != nullptr);
  REQUIRE(backup != nullptr);
  REQUIRE(w.pool->RegisterModel<FakeModel>("primary", primary, {.fallback_model = "backup"}).ok());
  REQUIRE(w.pool->RegisterModel<FakeModel>("backup", backup).ok());
  CHECK(w.pool->RegisterModel<FakeModel>("self", backup, {.fallback_model = "self"}).code() ==
        absl::StatusCode::kInvalidArgument);
  auto submit = [&](const std::string& model) {
    return w.pool->SubmitTask<FakeModel, int>(model,
                                              [](FakeModel& m) { return m.Run({.value = 4}); });
  };
  Result moved = submit("primary");
  absl::StatusOr<int> result = Get(moved);
  REQUIRE(result.ok());
  CHECK(*result == 8);
  auto stats_of = [&](const std::string& model) {
    for (const ModelStats& m : w.pool->Stats().models) {
      if (m.model_id == model) return m;
    }
    FAIL("no stats for " << model);
    return ModelStats{};
  };
  CHECK(stats_of("primary").fallbacks == 1);
  CHECK(stats_of("primary").out_of_memory >= 1);
  CHECK(stats_of("backup").succeeded == 1);

  // A fallback that runs out of memory too is not handed on again: the request fails.
  auto everywhere = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .probability = 1}});
  World v(1, NoBreakers(), everywhere);
  auto a = FakeModelManager::Create({.gpus = 1}, v.inventory);
  auto b = FakeModelManager::Create({.gpus = 1}, v.inventory);
  REQUIRE(v.pool->RegisterModel<FakeModel>("a", a, {.fallback_model = "b"}).ok());
  REQUIRE(v.pool->RegisterModel<FakeModel>("b", b, {.fallback_model = "a"}).ok());
  Result nowhere =
      v.pool->SubmitTask<FakeModel, int>("a", [](FakeModel& m) { return m.Run({.value = 1}); });
  CHECK(Get(nowhere).status().code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("An instance that fails its deep check is dropped and reloaded") {
  auto broken = std::make_shared<std::atomic<bool>>(false);
  FailureSettings failures = NoBreakers();
  failures.health_check_interval = absl::ZeroDuration();
  failures.restart_backoff_base = absl::Seconds(10);
  failures.restart_backoff_cap = absl::Seconds(10);
  failures.restart_jitter = 0;
  FakeClock clock;  // the restart waits until the test moves it
  World w(1, failures, nullptr, &clock, [broken](FakeModel&) {
    return broken->load() ? absl::InternalError("the instance gives NaN") : absl::OkStatus();
  });
  Result first = w.Submit({.value = 1});
  REQUIRE(Get(first).ok());
  absl::StatusOr<Health> healthy = w.pool->CheckHealth(absl::Seconds(30));
  REQUIRE(healthy.ok());
  CHECK(healthy->level == HealthLevel::kHealthy);
  CHECK(w.Model().checks == 1);
  broken->store(true);
  absl::StatusOr<Health> failed = w.pool->CheckHealth(absl::Seconds(30));
  REQUIRE(failed.ok());
  CHECK(failed->level == HealthLevel::kUnhealthy);
  CHECK(w.Model().checks_failed == 1);
  CHECK(w.pool->Stats().workers[0].state == WorkerState::kRestarting);
  broken->store(false);
  clock.Advance(absl::Seconds(10));
  Result after = w.Submit({.value = 2});
  absl::StatusOr<int> reloaded = Get(after);
  REQUIRE(reloaded.ok());
  CHECK(*reloaded == 4);
  CHECK(w.manager->loads == 2);
  CHECK(w.Model().restarts == 1);
}

TEST_CASE("Listeners hear every event without a pool lock held; one that throws breaks nothing") {
  World w(1, NoBreakers());
  struct Thrower : WorkerPoolListener {
    void OnModelLoaded(const ModelEvent&) override { throw std::runtime_error("loaded"); }
    void OnWorkerStateChanged(const WorkerStateChange&) override { throw 42; }
    void OnJobEnded(const JobInfo&) override { throw std::runtime_error("finished"); }
  };
  struct Counter : WorkerPoolListener {
    explicit Counter(GenericWorkerPool* pool) : pool(pool) {}
    void OnModelLoaded(const ModelEvent& e) override {
      if (e.model_id == "fake") ++loaded;
    }
    void OnWorkerStateChanged(const WorkerStateChange& c) override {
      if (c.from == c.to) ++bad_changes;
      ++changes;
    }
    void OnJobEnded(const JobInfo& job) override {
      // Calling the pool here would deadlock if a pool lock were held.
      if (pool->Poll(job.id).ok()) ++finished;
    }
    GenericWorkerPool* pool;
    std::atomic<int> loaded{0}, changes{0}, bad_changes{0}, finished{0};
  };
  auto counter = std::make_shared<Counter>(w.pool.get());
  w.pool->AddListener(std::make_shared<Thrower>());
  w.pool->AddListener(counter);
  std::vector<Result> results;
  for (int i = 0; i < 20; ++i) results.push_back(w.Submit({.value = i}));
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> r = Get(results[i]);
    REQUIRE(r.ok());
    CHECK(*r == 2 * i);
  }
  REQUIRE(Eventually([&] { return counter->finished == 20; }));
  CHECK(counter->loaded == 1);
  CHECK(counter->changes > 0);
  CHECK(counter->bad_changes == 0);
  const WorkerPoolStats stats = w.pool->Stats();
  CHECK(stats.callback_errors > 20);
  CHECK(stats.invalid_transitions == 0);
  REQUIRE_FALSE(stats.workers[0].transitions.empty());
  CHECK(stats.workers[0].state_since != absl::Time());
  w.pool->RemoveListener(counter.get());
  Result after = w.Submit({.value = 100});
  REQUIRE(Get(after).ok());
  CHECK(counter->finished == 20);
}

}  // namespace
}  // namespace modelpool
