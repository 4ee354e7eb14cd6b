#include "modelpool/workers/generic_worker_pool.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/testing/eventually.h"
#include "tests/workers/fake_model.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;
using ::modelpool::testing::FakeRequest;
using Result = std::future<absl::StatusOr<int>>;

struct Setup {
  explicit Setup(FakeModelManager::Options options = {}, int workers_per_device = 1,
                 LoadBalancing balancing = LoadBalancing::kLeastBusy, bool enabled = true,
                 int max_queued = 100000, FailureSettings failures = {}) {
    inventory = FakeModelManager::Inventory(options.gpus);
    manager = FakeModelManager::Create(options, inventory);
    REQUIRE(manager != nullptr);
    WorkerSettings workers;
    workers.workers_per_device = workers_per_device;
    workers.load_balancing = balancing;
    workers.worker_pool = enabled;
    workers.failures = failures;
    auto created = GenericWorkerPool::Create({.settings = Settings{},
                                              .workers = workers,
                                              .inventory = inventory,
                                              .max_queued_requests = max_queued});
    REQUIRE(created.ok());
    pool = *std::move(created);
    REQUIRE(pool->RegisterModel<FakeModel>("fake", manager).ok());
  }

  Result Submit(FakeRequest request, SubmitOptions options = {}) {
    return pool->SubmitTask<FakeModel, int>(
        "fake", [request](FakeModel& m) { return m.Run(request); }, options);
  }

  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<FakeModelManager> manager;
  std::unique_ptr<GenericWorkerPool> pool;
};

bool Ready(Result& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

TEST_CASE("Every request comes back with its own result") {
  Setup s;
  std::vector<Result> results;
  for (int i = 0; i < 200; ++i) results.push_back(s.Submit({.value = i}));
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<int> r = results[i].get();
    REQUIRE(r.ok());
    CHECK(*r == 2 * i);
  }
  const WorkerPoolStats status = s.pool->Stats();
  REQUIRE(status.models.size() == 1);
  CHECK(status.models[0].submitted == 200);
  CHECK(status.models[0].succeeded == 200);
  CHECK(status.workers.size() == 2);
  for (const WorkerStats& w : status.workers) CHECK(w.model_id == "fake");
}

TEST_CASE("Higher priority runs first on a worker; equal priorities in order") {
  FakeModelManager::Options options;
  options.gpus = 1;
  Setup s(options);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::mutex order_mu;
  std::vector<int> order;
  auto record = [&](int tag, int priority) {
    return s.pool->SubmitTask<FakeModel, int>("fake",
                                              [&, tag](FakeModel&) -> absl::StatusOr<int> {
                                                std::lock_guard<std::mutex> lock(order_mu);
                                                order.push_back(tag);
                                                return tag;
                                              },
                                              {.priority = priority});
  };
  auto blocker =
      s.pool->SubmitTask<FakeModel, int>("fake", [open](FakeModel&) -> absl::StatusOr<int> {
        open.wait();
        return 0;
      });
  REQUIRE(Eventually([&] { return s.pool->Stats().workers[0].state == WorkerState::kBusy; }));
  std::vector<Result> results;
  results.push_back(record(1, 0));
  results.push_back(record(2, 5));
  results.push_back(record(3, 0));
  results.push_back(record(4, 9));
  gate.set_value();
  for (auto& r : results) CHECK(r.get().ok());
  CHECK(blocker.get().ok());
  CHECK(order == std::vector<int>{4, 2, 1, 3});
}

TEST_CASE("Exactly once under 16 submitting threads with random failures") {
  // Every failure here is the request's own: no circuit may open and fail the others.
  FailureSettings no_breakers;
  no_breakers.breaker_failures = 0;
  no_breakers.breaker_error_rate = 0;
  Setup s({}, /*workers_per_device=*/2, LoadBalancing::kLeastBusy, /*enabled=*/true,
          /*max_queued=*/100000, no_breakers);
  constexpr int kThreads = 16, kPerThread = 300;
  struct Outcome {
    int ok = 0, failed = 0, wrong = 0, not_ready = 0;
  };
  std::vector<Outcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<FakeRequest, Result>> mine;
      for (int i = 0; i < kPerThread; ++i) {
        FakeRequest request{.value = t * kPerThread + i};
        const int roll = static_cast<int>(rng() % 10);
        request.fail = roll == 0;
        request.throw_error = roll == 1;
        mine.emplace_back(request, s.Submit(request));
      }
      for (auto& [request, future] : mine) {
        if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
          ++outcomes[t].not_ready;
          continue;
        }
        absl::StatusOr<int> r = future.get();
        const bool should_fail = request.fail || request.throw_error;
        if (r.ok() && !should_fail && *r == 2 * request.value) {
          ++outcomes[t].ok;
        } else if (!r.ok() && should_fail && r.status().code() == absl::StatusCode::kInternal) {
          ++outcomes[t].failed;
        } else {
          ++outcomes[t].wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Outcome sum;
  for (const Outcome& o : outcomes) {
    sum.ok += o.ok;
    sum.failed += o.failed;
    sum.wrong += o.wrong;
    sum.not_ready += o.not_ready;
  }
  CHECK(sum.wrong == 0);
  CHECK(sum.not_ready == 0);
  CHECK(sum.ok + sum.failed == kThreads * kPerThread);
  const ModelStats totals = s.pool->Stats().models[0];
  CHECK(totals.submitted == static_cast<uint64_t>(kThreads * kPerThread));
  CHECK(totals.succeeded == static_cast<uint64_t>(sum.ok));
  CHECK(totals.failed == static_cast<uint64_t>(sum.failed));
}

TEST_CASE("A request that throws fails alone; the worker keeps serving") {
  FakeModelManager::Options options;
  options.gpus = 1;
  Setup s(options);
  absl::StatusOr<int> thrown = s.Submit({.value = 1, .throw_error = true}).get();
  REQUIRE_FALSE(thrown.ok());
  CHECK_THAT(std::string(thrown.status().message()), Catch::Contains("fake model threw"));
  absl::StatusOr<int> next = s.Submit({.value = 2}).get();
  REQUIRE(next.ok());
  CHECK(*next == 4);
  CHECK(s.pool->Stats().workers[0].errors == 1);
  CHECK(s.manager->loads == 1);
}

TEST_CASE("A request whose deadline passes before it starts ends with DeadlineExceeded") {
  FakeModelManager::Options options;
  options.gpus = 1;
  Setup s(options);
  Result slow = s.Submit({.value = 1, .work = absl::Milliseconds(200)});
  // Within a class the earlier deadline runs first: let the slow one start before the late one
  // is queued.
  REQUIRE(Eventually([&] { return s.pool->Stats().workers[0].state == WorkerState::kBusy; }));
  Result late = s.Submit({.value = 2}, {.deadline = absl::Now() + absl::Milliseconds(20)});
  Result past = s.Submit({.value = 3}, {.deadline = absl::Now() - absl::Seconds(1)});
  CHECK(slow.get().ok());
  CHECK(late.get().status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(past.get().status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(s.pool->Stats().models[0].expired == 2);
}

TEST_CASE("Shutdown while busy ends every request and does not hang") {
  Setup s;
  std::vector<Result> results;
  for (int i = 0; i < 100; ++i)
    results.push_back(s.Submit({.value = i, .work = absl::Milliseconds(10)}));
  REQUIRE(Eventually([&] { return s.pool->Stats().models[0].succeeded > 0; }));
  const absl::Time start = absl::Now();
  s.pool->Shutdown(absl::Milliseconds(30));
  CHECK(absl::Now() - start < absl::Seconds(5));
  int ok = 0, cancelled = 0, other = 0;
  for (auto& r : results) {
    REQUIRE(Ready(r));
    absl::StatusOr<int> v = r.get();
    if (v.ok()) {
      ++ok;
    } else if (v.status().code() == absl::StatusCode::kCancelled) {
      ++cancelled;
    } else {
      ++other;
    }
  }
  CHECK(ok > 0);
  CHECK(cancelled > 0);
  CHECK(other == 0);
  CHECK(ok + cancelled == 100);
  CHECK(s.Submit({.value = 1}).get().status().code() == absl::StatusCode::kCancelled);
  for (const WorkerStats& w : s.pool->Stats().workers) CHECK(w.state == WorkerState::kStopped);
}

TEST_CASE("Unknown models and mismatched types are refused clearly") {
  Setup s;
  auto unknown =
      s.pool->SubmitTask<FakeModel, int>("nope", [](FakeModel&) { return absl::StatusOr<int>(1); });
  CHECK(unknown.get().status().code() == absl::StatusCode::kNotFound);
  auto wrong = s.pool->SubmitTask<int, int>("fake", [](int&) { return absl::StatusOr<int>(1); });
  CHECK(wrong.get().status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.pool->RegisterModel<FakeModel>("fake", s.manager).code() ==
        absl::StatusCode::kAlreadyExists);
}

TEST_CASE("A full queue refuses with ResourceExhausted") {
  FakeModelManager::Options options;
  options.gpus = 1;
  Setup s(options, 1, LoadBalancing::kLeastBusy, true, /*max_queued=*/3);
  std::vector<Result> results;
  results.push_back(s.Submit({.value = 0, .work = absl::Milliseconds(100)}));
  REQUIRE(Eventually([&] { return s.pool->Stats().workers[0].state == WorkerState::kBusy; }));
  for (int i = 1; i <= 3; ++i) results.push_back(s.Submit({.value = i}));
  CHECK(s.Submit({.value = 9}).get().status().code() == absl::StatusCode::kResourceExhausted);
  for (auto& r : results) CHECK(r.get().ok());
}

TEST_CASE("least_busy sends work away from a slow worker; round_robin does not") {
  auto slow_share = [](LoadBalancing balancing) {
    FakeModelManager::Options options;
    options.slow_device = Device::Cuda(1);
    options.slow_work = absl::Milliseconds(20);
    Setup s(options, 1, balancing);
    std::vector<Result> outstanding;
    for (int i = 0; i < 120; ++i) {
      outstanding.push_back(s.Submit({.value = i, .work = absl::Microseconds(200)}));
      // Keep a few requests in flight, so the queues say who is faster.
      while (true) {
        int pending = 0;
        for (auto& r : outstanding) pending += Ready(r) ? 0 : 1;
        if (pending < 4) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    for (auto& r : outstanding) REQUIRE(r.get().ok());
    const WorkerPoolStats status = s.pool->Stats();
    double slow = 0, total = 0;
    for (const WorkerStats& w : status.workers) {
      total += static_cast<double>(w.completed);
      if (w.device == Device::Cuda(1)) slow += static_cast<double>(w.completed);
    }
    return slow / total;
  };
  const double least_busy = slow_share(LoadBalancing::kLeastBusy);
  const double round_robin = slow_share(LoadBalancing::kRoundRobin);
  INFO("slow worker's share: least_busy " << least_busy << ", round_robin " << round_robin);
  CHECK(least_busy < 0.2);
  CHECK(round_robin > 0.45);
}

TEST_CASE("PreloadModel loads instances on workers and Status shows them") {
  Setup s({}, /*workers_per_device=*/2);
  REQUIRE(s.pool->PreloadModel("fake", 3).ok());
  CHECK(s.manager->loads == 3);
  REQUIRE(Eventually([&] {
    for (const WorkerStats& w : s.pool->Stats().workers) {
      if (w.state == WorkerState::kStarting) return false;
    }
    return true;
  }));
  const WorkerPoolStats status = s.pool->Stats();
  int serving = 0;
  for (const WorkerStats& w : status.workers) {
    if (w.model_id == "fake") {
      ++serving;
      CHECK(w.state == WorkerState::kIdle);
    }
  }
  CHECK(serving == 3);
  CHECK(s.pool->PreloadModel("nope", 1).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("A worker that cannot load passes its requests to the others") {
  FakeModelManager::Options options;
  options.failing_device = Device::Cuda(1);
  // Quick restarts: the device gives the model up after its third failed load.
  FailureSettings quick;
  quick.restart_backoff_base = absl::Milliseconds(1);
  quick.restart_backoff_cap = absl::Milliseconds(2);
  quick.restart_max_attempts = 3;
  Setup s(options, /*workers_per_device=*/1, LoadBalancing::kLeastBusy, /*enabled=*/true,
          /*max_queued=*/100000, quick);
  // Workers load when they take work: hold the worker of cuda:0 so that the other one tries.
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  Result held = s.pool->SubmitTask<FakeModel, int>("fake", [open](FakeModel&) {
    open.wait();
    return absl::StatusOr<int>(0);
  });
  REQUIRE(Eventually([&] {
    for (const WorkerStats& w : s.pool->Stats().workers) {
      if (w.state == WorkerState::kBusy && w.device == Device::Cuda(0)) return true;
    }
    return false;
  }));
  std::vector<Result> results;
  for (int i = 0; i < 50; ++i) results.push_back(s.Submit({.value = i}));
  REQUIRE(Eventually([&] { return s.pool->Stats().workers[1].state == WorkerState::kFailed; }));
  gate.set_value();
  CHECK(held.get().ok());
  for (auto& r : results) CHECK(r.get().ok());
  const WorkerPoolStats status = s.pool->Stats();
  CHECK(status.workers[1].state == WorkerState::kFailed);
  CHECK_THAT(status.workers[1].last_error, Catch::Contains("fake load failure"));
  CHECK(s.manager->loads == 4);  // cuda:0 once, cuda:1 three times
  CHECK(status.models[0].restarts == 2);
  REQUIRE(status.models[0].on_devices.size() == 2);
  CHECK(status.models[0].on_devices[1].gave_up);
  CHECK(status.models[0].on_devices[1].restart_failures == 3);
  CHECK_FALSE(status.models[0].on_devices[0].gave_up);
  CHECK(status.models[0].health.level == HealthLevel::kDegraded);
  const absl::Status preload = s.pool->PreloadModel("fake", 2);
  CHECK(preload.code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("An idle instance unloads after its keep-alive on the real clock") {
  // Regression: the timer slept past the keep-alive of an instance handed back after it had
  // last looked (only a fake clock's jumps woke it).
  FakeModelManager::Options options;
  options.gpus = 1;
  auto inventory = FakeModelManager::Inventory(1);
  auto manager = FakeModelManager::Create(options, inventory);
  REQUIRE(manager != nullptr);
  WorkerSettings workers;
  workers.keep_alive_gpu = absl::Milliseconds(50);
  auto pool = GenericWorkerPool::Create(
      {.settings = Settings{}, .workers = workers, .inventory = inventory});
  REQUIRE(pool.ok());
  REQUIRE((*pool)->RegisterModel<FakeModel>("fake", manager).ok());
  REQUIRE((*pool)
              ->SubmitTask<FakeModel, int>("fake", [](FakeModel& m) { return m.Run({.value = 1}); })
              .get()
              .ok());
  CHECK(Eventually([&] {
    const ModelStats m = (*pool)->Stats().models[0];
    return m.loaded.empty() && m.unloads == 1;
  }));
}

TEST_CASE("With the worker pool off, requests run on the caller's thread with the same results") {
  Setup s({}, 1, LoadBalancing::kLeastBusy, /*enabled=*/false);
  std::thread::id ran_on;
  auto r = s.pool->SubmitTask<FakeModel, int>("fake", [&](FakeModel& m) {
    ran_on = std::this_thread::get_id();
    return m.Run({.value = 21});
  });
  REQUIRE(Ready(r));
  CHECK(*r.get() == 42);
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(s.pool->Stats().workers.empty());
  CHECK(s.pool->Stats().models[0].succeeded == 1);
  CHECK(s.pool->PreloadModel("fake", 2).ok());
}

}  // namespace
}  // namespace modelpool
