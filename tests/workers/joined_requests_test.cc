// Requests joined together (Note [Joined requests]): which queued requests join the one a
// worker takes, in what order, and what each caller gets back.
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "modelpool/workers/fault_injector.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "tests/testing/eventually.h"
#include "tests/workers/fake_model.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;

// A request: a value to double, and whether the model fails it.
struct Item {
  int value = 0;
  bool bad = false;
};

// What each call of joined requests got, in order.
class Calls {
 public:
  void Record(std::vector<int> values) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(values));
  }
  std::vector<std::vector<int>> Get() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::vector<int>> calls_ ABSL_GUARDED_BY(mu_);
};

// One GPU and one worker, so that what the worker takes next is known; a gate request holds the
// worker while the test queues requests behind it.
struct JoinWorld {
  explicit JoinWorld(absl::Duration window, int64_t max_batch_tokens = 1000,
                     std::shared_ptr<FaultInjector> faults = nullptr, int breaker_failures = 5) {
    inventory = FakeModelManager::Inventory(1);
    manager = FakeModelManager::Create({.gpus = 1}, inventory);
    REQUIRE(manager != nullptr);
    WorkerSettings workers;
    workers.batch_window = window;
    workers.max_batch_tokens = max_batch_tokens;
    workers.failures.breaker_failures = breaker_failures;
    auto created = GenericWorkerPool::Create({.settings = Settings{},
                                              .workers = workers,
                                              .inventory = inventory,
                                              .faults = std::move(faults)});
    REQUIRE(created.ok());
    pool = *std::move(created);
    REQUIRE(pool->RegisterModel<FakeModel>("fake", manager).ok());
  }
  ~JoinWorld() {
    if (!opened) gate.set_value();
  }

  // Holds the worker until `Open()`.
  std::future<absl::StatusOr<int>> Hold() {
    std::shared_future<void> open = opens;
    auto held = pool->SubmitTask<FakeModel, int>("fake", [open](FakeModel&) -> absl::StatusOr<int> {
      open.wait();
      return 0;
    });
    REQUIRE(Eventually([&] { return pool->Stats().models[0].running == 1; }));
    return held;
  }
  void Open() {
    opened = true;
    gate.set_value();
  }

  JobHandle<int> Submit(Item item, const std::string& key = "k", SubmitOptions options = {}) {
    if (options.tokens == 0) options.tokens = 1;
    Joinable<FakeModel, Item, int> joinable;
    joinable.key = key;
    joinable.request = item;
    joinable.run = [this](FakeModel&, absl::Span<const Item* const> items) {
      std::vector<int> values;
      std::vector<absl::StatusOr<int>> results;
      for (const Item* i : items) {
        values.push_back(i->value);
        results.push_back(i->bad ? absl::StatusOr<int>(absl::InvalidArgumentError("bad item"))
                                 : absl::StatusOr<int>(2 * i->value));
      }
      calls.Record(std::move(values));
      return results;
    };
    return pool->SubmitJoinable("fake", std::move(joinable), options);
  }

  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<FakeModelManager> manager;
  std::unique_ptr<GenericWorkerPool> pool;
  std::promise<void> gate;
  std::shared_future<void> opens = gate.get_future().share();
  bool opened = false;
  Calls calls;
};

TEST_CASE("Queued requests of one key run in one call, and each caller gets its own result") {
  JoinWorld world(absl::Milliseconds(2));
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 20; ++i) jobs.push_back(world.Submit({.value = i}));
  world.Open();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> result = jobs[i].result.get();
    REQUIRE(result.ok());
    CHECK(*result == 2 * i);
  }
  REQUIRE(held.get().ok());
  const std::vector<std::vector<int>> calls = world.calls.Get();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].size() == 20);
  const ModelStats stats = world.pool->Stats().models[0];
  CHECK(stats.succeeded == 21);
  CHECK(stats.running == 0);
}

TEST_CASE("A joined request that fails fails alone") {
  JoinWorld world(absl::Milliseconds(2));
  auto held = world.Hold();
  JobHandle<int> good = world.Submit({.value = 1});
  JobHandle<int> bad = world.Submit({.value = 2, .bad = true});
  JobHandle<int> also_good = world.Submit({.value = 3});
  world.Open();
  CHECK(*good.result.get() == 2);
  CHECK(bad.result.get().status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(*also_good.result.get() == 6);
  CHECK(world.calls.Get().size() == 1);
  absl::StatusOr<JobInfo> info = world.pool->Wait(bad.id, absl::Seconds(10));
  REQUIRE(info.ok());
  CHECK(info->state == JobState::kFailed);
}

TEST_CASE("Requests of different keys do not join") {
  JoinWorld world(absl::Milliseconds(2));
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(world.Submit({.value = i}, i % 2 == 0 ? "a" : "b"));
  world.Open();
  for (auto& job : jobs) REQUIRE(job.result.get().ok());
  const std::vector<std::vector<int>> calls = world.calls.Get();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == std::vector<int>{0, 2, 4});
  CHECK(calls[1] == std::vector<int>{1, 3, 5});
}

TEST_CASE("Joining follows rank and stops at the first request over max_batch_tokens") {
  JoinWorld world(absl::Milliseconds(2), /*max_batch_tokens=*/10);
  auto held = world.Hold();
  JobHandle<int> low =
      world.Submit({.value = 1}, "k", {.priority_class = Priority::kLow, .tokens = 4});
  JobHandle<int> big = world.Submit({.value = 2}, "k", {.priority = 1, .tokens = 8});
  JobHandle<int> high =
      world.Submit({.value = 3}, "k", {.priority_class = Priority::kHigh, .tokens = 4});
  JobHandle<int> normal = world.Submit({.value = 4}, "k", {.tokens = 4});
  world.Open();
  for (JobHandle<int>* job : {&low, &big, &high, &normal}) REQUIRE(job->result.get().ok());
  // high (4 tokens) runs alone: big, next by rank, would take it past 10, and ends the batch;
  // then big alone, as normal would; then normal and low.
  const std::vector<std::vector<int>> calls = world.calls.Get();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0] == std::vector<int>{3});
  CHECK(calls[1] == std::vector<int>{2});
  CHECK(calls[2] == std::vector<int>{4, 1});
}

TEST_CASE("A request past its deadline never joins") {
  JoinWorld world(absl::Milliseconds(2));
  auto held = world.Hold();
  JobHandle<int> on_time = world.Submit({.value = 1});
  JobHandle<int> late =
      world.Submit({.value = 2}, "k", {.deadline = absl::Now() + absl::Milliseconds(50)});
  REQUIRE(Eventually([&] {
    absl::StatusOr<JobInfo> info = world.pool->Poll(late.id);
    return info.ok() && info->state == JobState::kExpired;
  }));
  world.Open();
  CHECK(*on_time.result.get() == 2);
  CHECK(late.result.get().status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(world.calls.Get() == std::vector<std::vector<int>>{{1}});
}

TEST_CASE("A batch window of zero turns joining off") {
  JoinWorld world(absl::ZeroDuration());
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(world.Submit({.value = i}));
  world.Open();
  for (auto& job : jobs) REQUIRE(job.result.get().ok());
  CHECK(world.calls.Get().size() == 5);
}

TEST_CASE("A lone request waits in its window for others and starts once the batch is full") {
  // A window no test waits out: the batch fills (two tokens) and starts.
  JoinWorld world(absl::Minutes(10), /*max_batch_tokens=*/2);
  JobHandle<int> first = world.Submit({.value = 1});
  REQUIRE(Eventually([&] { return world.pool->Stats().models[0].running == 1; }));
  JobHandle<int> second = world.Submit({.value = 2});
  CHECK(*first.result.get() == 2);
  CHECK(*second.result.get() == 4);
  CHECK(world.calls.Get() == std::vector<std::vector<int>>{{1, 2}});
}

TEST_CASE("Shutdown ends a window at once, and the request runs") {
  JoinWorld world(absl::Minutes(10));
  JobHandle<int> lone = world.Submit({.value = 5});
  REQUIRE(Eventually([&] { return world.pool->Stats().models[0].running == 1; }));
  world.pool->Shutdown(absl::Seconds(10));
  CHECK(*lone.result.get() == 10);
}

TEST_CASE("Listeners hear every request's end and every call, with its rows and tokens") {
  struct Recorder : WorkerPoolListener {
    void OnJobEnded(const JobInfo& job) override {
      absl::MutexLock lock(&mu);
      ended[job.state]++;
    }
    void OnBatchRun(const BatchInfo& batch) override {
      absl::MutexLock lock(&mu);
      batches.push_back(batch);
    }
    absl::Mutex mu;
    std::map<JobState, int> ended ABSL_GUARDED_BY(mu);
    std::vector<BatchInfo> batches ABSL_GUARDED_BY(mu);
  };
  auto listener = std::make_shared<Recorder>();
  Recorder& recorder = *listener;
  JoinWorld world(absl::Milliseconds(2));
  world.pool->AddListener(listener);
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(world.Submit({.value = i}, "k", {.tokens = 3}));
  JobHandle<int> unknown = world.pool->SubmitJob<FakeModel, int>(
      "missing", [](FakeModel&) -> absl::StatusOr<int> { return 0; });
  world.Open();
  for (auto& job : jobs) REQUIRE(job.result.get().ok());
  REQUIRE(held.get().ok());
  CHECK(unknown.result.get().status().code() == absl::StatusCode::kNotFound);
  world.pool->RemoveListener(listener.get());
  absl::MutexLock lock(&recorder.mu);
  CHECK(recorder.ended[JobState::kSucceeded] == 5);
  CHECK(recorder.ended[JobState::kFailed] == 1);
  REQUIRE(recorder.batches.size() == 2);  // the gate, then the four joined
  CHECK(recorder.batches[1].requests == 4);
  CHECK(recorder.batches[1].rows == 4);
  CHECK(recorder.batches[1].tokens == 12);
  CHECK(recorder.batches[1].model_id == "fake");
  CHECK(recorder.batches[1].device == Device::Cuda(0));
}

// Note [Faults in joined calls]
std::shared_ptr<FaultInjector> Faults(const std::string& spec) {
  absl::StatusOr<std::shared_ptr<FaultInjector>> faults = FaultInjector::Parse(spec);
  REQUIRE(faults.ok());
  return *faults;
}

TEST_CASE("A fault in a joined call fails each joined request and counts once on the breaker") {
  // The gate is the model's first call; the four joined requests make its second.
  JoinWorld world(absl::Milliseconds(2), 1000, Faults("throw:nth=2"), /*breaker_failures=*/1);
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(world.Submit({.value = i}));
  world.Open();
  for (auto& job : jobs) {
    absl::StatusOr<int> result = job.result.get();
    CHECK(result.status().code() == absl::StatusCode::kInternal);
  }
  REQUIRE(held.get().ok());
  CHECK(world.calls.Get().empty());  // the fault came before the model was called
  const ModelStats stats = world.pool->Stats().models.at(0);
  REQUIRE(stats.on_devices.size() == 1);
  CHECK(stats.on_devices[0].circuit_openings == 1);
  CHECK(stats.failed == 4);
}

TEST_CASE("Joined requests that run out of memory are split in halves and retried") {
  JoinWorld world(absl::Milliseconds(2), 1000, Faults("oom:nth=2"));
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(world.Submit({.value = i}));
  world.Open();
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<int> result = jobs[i].result.get();
    REQUIRE(result.ok());
    CHECK(*result == 2 * i);
  }
  REQUIRE(held.get().ok());
  CHECK(world.calls.Get() == std::vector<std::vector<int>>{{0, 1}, {2, 3}});
  const ModelStats stats = world.pool->Stats().models.at(0);
  CHECK(stats.out_of_memory == 1);
  CHECK(stats.split_retries == 1);
}

TEST_CASE("A joined call past the execution timeout fails every request joined in it") {
  std::shared_ptr<FaultInjector> faults = Faults("stall:nth=2,for=10m");
  JoinWorld world(absl::Milliseconds(2), 1000, faults);
  auto held = world.Hold();
  std::vector<JobHandle<int>> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(world.Submit({.value = i}, "k", {.execution_timeout = absl::Milliseconds(50)}));
  }
  world.Open();
  for (auto& job : jobs) {
    CHECK(job.result.get().status().code() == absl::StatusCode::kDeadlineExceeded);
  }
  REQUIRE(held.get().ok());
  CHECK(world.pool->Stats().models.at(0).hung == 1);
  // The call given up on still runs the requests (kept alive for it); let it return before the
  // world goes.
  faults->ReleaseStalls();
  CHECK(Eventually([&] { return world.pool->Stats().stuck_calls == 0; }));
  CHECK(world.calls.Get() == std::vector<std::vector<int>>{{0, 1, 2}});
}

}  // namespace
}  // namespace modelpool
