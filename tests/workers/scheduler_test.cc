// The scheduler's behaviours one at a time, on fake GPUs and fake models with a fake clock.
#include <catch2/catch.hpp>
#include <mutex>
#include <vector>

#include "tests/workers/scheduler_world.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeMemoryModel;
using ::modelpool::testing::kGiB;
using ::modelpool::testing::SchedulerWorld;
using ::modelpool::testing::Workers;

// Submits requests that record their tag in `order` when they run.
struct Recorder {
  explicit Recorder(SchedulerWorld& world) : world(world) {}
  JobHandle<int64_t> Submit(const std::string& model, int tag, const SubmitOptions& options = {}) {
    return world.pool->SubmitJob<FakeMemoryModel, int64_t>(
        model,
        [this, tag](FakeMemoryModel& m) -> absl::StatusOr<int64_t> {
          std::lock_guard<std::mutex> lock(mu);
          order.push_back(tag);
          return m.Run(1);
        },
        options);
  }
  SchedulerWorld& world;
  std::mutex mu;
  std::vector<int> order;
};

bool Busy(SchedulerWorld& w, int worker = 0) {
  return Eventually([&] { return w.pool->Stats().workers[worker].state == WorkerState::kBusy; });
}

TEST_CASE("Registering loads nothing; a request loads its model on demand") {
  SchedulerWorld w(1, 10 * kGiB, Workers(1));
  auto a = w.Add({.name = "a", .instance_bytes = 2 * kGiB});
  w.Add({.name = "b", .instance_bytes = 2 * kGiB});
  CHECK(w.gpus->instances == 0);
  CHECK(w.LoadedOn("a").empty());
  absl::StatusOr<int64_t> r = w.Submit("a", 5).result.get();
  REQUIRE(r.ok());
  CHECK(*r == 5);
  CHECK(a->loads == 1);
  CHECK(w.LoadedOn("a") == std::map<int, int>{{0, 1}});
  CHECK(w.LoadedOn("b").empty());
  CHECK(w.StatsOf("a").loads == 1);
}

TEST_CASE("When memory is full, the least recently used idle model is evicted") {
  SchedulerWorld w(1, 5 * kGiB, Workers(1));
  for (const char* name : {"a", "b", "c"}) {
    w.Add({.name = name,
           .instance_bytes = 2 * kGiB,
           .load_time = absl::Seconds(1),
           .per_token = absl::Milliseconds(1)});
  }
  for (const char* name : {"a", "b", "a", "c"}) REQUIRE(w.Submit(name).result.get().ok());
  CHECK(w.LoadedOn("a") == std::map<int, int>{{0, 1}});
  CHECK(w.LoadedOn("b").empty());
  CHECK(w.LoadedOn("c") == std::map<int, int>{{0, 1}});
  CHECK(w.StatsOf("b").evictions == 1);
  CHECK(w.StatsOf("a").evictions == 0);
  CHECK(w.gpus->over_budget == 0);
}

TEST_CASE("A leased instance is never evicted: the load waits until the lease ends") {
  SchedulerWorld w(1, 3 * kGiB, Workers(1));
  auto a = w.Add({.name = "a", .instance_bytes = 2 * kGiB});
  w.Add({.name = "b", .instance_bytes = 2 * kGiB});
  auto lease = a->Acquire(absl::Seconds(1));  // held outside the pool
  REQUIRE(lease.ok());
  ++(*lease)->running;
  JobHandle<int64_t> b = w.Submit("b");
  REQUIRE(w.WaitingOnTime());
  CHECK(w.pool->Poll(b.id)->state == JobState::kQueued);
  CHECK(w.LoadedOn("a") == std::map<int, int>{{0, 1}});
  --(*lease)->running;
  lease->Release();
  w.clock.Advance(absl::Seconds(2));  // a lease that ends outside the pool is seen on a retry
  absl::StatusOr<int64_t> done = b.result.get();
  CHECK(done.ok());
  CHECK(w.LoadedOn("a").empty());
  CHECK(w.StatsOf("a").evictions == 1);
  CHECK(w.gpus->destroyed_while_running == 0);
  CHECK(w.gpus->over_budget == 0);
}

TEST_CASE("A request whose model cannot get memory fails in time, saying what is loaded") {
  SchedulerWorld w(1, 3 * kGiB, Workers(1), /*load_timeout=*/absl::Minutes(1));
  auto a = w.Add({.name = "a", .instance_bytes = 2 * kGiB});
  w.Add({.name = "b", .instance_bytes = 2 * kGiB});
  auto lease = a->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  JobHandle<int64_t> waits = w.Submit("b");
  JobHandle<int64_t> late = w.Submit("b", 1, {.deadline = w.clock.Now() + absl::Seconds(30)});
  REQUIRE(w.WaitingOnTime());
  w.clock.Advance(absl::Seconds(31));
  absl::StatusOr<int64_t> expired = late.result.get();
  CHECK(expired.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(w.pool->Poll(late.id)->state == JobState::kExpired);
  // The load timeout counts from the request's own first try: `late`, first by its deadline,
  // was tried before it; `waits` is tried once the clock has moved.
  REQUIRE(w.WaitingOnTime());
  w.clock.Advance(absl::Seconds(61));
  absl::StatusOr<int64_t> failed = waits.result.get();
  REQUIRE(failed.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(failed.status().message()), Catch::Contains("a x1"));
}

TEST_CASE("A model measured larger than every budget is refused at once") {
  SchedulerWorld w(1, 8 * kGiB, Workers(1), absl::Minutes(10), 1.0, /*budget_cap=*/3 * kGiB);
  // Its estimate fits the budget; its first load shows that it does not.
  w.Add({.name = "huge", .shared_bytes = 3 * kGiB, .instance_bytes = kGiB, .estimate_share = 0.5},
        {.keep_alive = absl::ZeroDuration()});
  REQUIRE(w.Submit("huge").result.get().ok());
  REQUIRE(Eventually(
      [&] { return w.LoadedOn("huge").empty() && w.pool->Stats().devices.at(0).used_bytes == 0; }));
  absl::StatusOr<int64_t> r = w.Submit("huge").result.get();
  REQUIRE(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("does not fit"));
  CHECK(w.StatsOf("huge").rejected == 1);
}

TEST_CASE("Classes are ordered over the pool, earliest deadline first within a class") {
  SchedulerWorld w(1, 10 * kGiB, Workers(1));
  w.Add({.name = "a", .instance_bytes = kGiB});
  Recorder r(w);
  JobHandle<int64_t> gate = w.SubmitGate("a", {.priority_class = Priority::kCritical});
  REQUIRE(Busy(w));
  const absl::Time now = w.clock.Now();
  std::vector<JobHandle<int64_t>> jobs;
  jobs.push_back(r.Submit("a", 1, {.priority_class = Priority::kBatch}));
  jobs.push_back(r.Submit("a", 2, {.priority_class = Priority::kLow}));
  jobs.push_back(r.Submit("a", 3, {.deadline = now + absl::Seconds(10)}));
  jobs.push_back(r.Submit("a", 4, {.deadline = now + absl::Seconds(5)}));
  jobs.push_back(r.Submit("a", 5, {.priority_class = Priority::kHigh}));
  jobs.push_back(r.Submit("a", 6, {.priority_class = Priority::kCritical}));
  jobs.push_back(r.Submit("a", 7));
  w.Open();
  CHECK(gate.result.get().ok());
  for (auto& job : jobs) CHECK(job.result.get().ok());
  CHECK(r.order == std::vector<int>{6, 5, 4, 3, 7, 2, 1});
}

TEST_CASE("A request that has waited the aging bound outranks every class but critical") {
  WorkerSettings settings = Workers(1);
  settings.aging_bound = absl::Seconds(10);
  SchedulerWorld w(1, 10 * kGiB, settings);
  w.Add({.name = "a", .instance_bytes = kGiB});
  Recorder r(w);
  JobHandle<int64_t> gate = w.SubmitGate("a", {.priority_class = Priority::kCritical});
  REQUIRE(Busy(w));
  std::vector<JobHandle<int64_t>> jobs;
  jobs.push_back(r.Submit("a", 1, {.priority_class = Priority::kBatch}));
  jobs.push_back(r.Submit("a", 2, {.priority_class = Priority::kLow}));
  w.clock.Advance(absl::Seconds(11));
  jobs.push_back(r.Submit("a", 3, {.priority_class = Priority::kBatch}));
  jobs.push_back(r.Submit("a", 4, {.priority_class = Priority::kHigh}));
  jobs.push_back(r.Submit("a", 5, {.priority_class = Priority::kCritical}));
  w.Open();
  CHECK(gate.result.get().ok());
  for (auto& job : jobs) CHECK(job.result.get().ok());
  CHECK(r.order == std::vector<int>{5, 1, 2, 4, 3});
}

TEST_CASE("A worker drains its model's queue before switching; fifo-lru alternates") {
  for (const std::string policy : {"modelpool", "fifo-lru"}) {
    INFO(policy);
    SchedulerWorld w(1, 3 * kGiB, Workers(1, policy));  // room for a or b, not both
    auto a = w.Add({.name = "a", .instance_bytes = 2 * kGiB});
    auto b = w.Add({.name = "b", .instance_bytes = 2 * kGiB});
    Recorder r(w);
    JobHandle<int64_t> gate = w.SubmitGate("a");
    REQUIRE(Busy(w));
    std::vector<JobHandle<int64_t>> jobs;
    for (int i = 0; i < 3; ++i) {
      jobs.push_back(r.Submit("a", 10 + i));
      jobs.push_back(r.Submit("b", 20 + i));
    }
    w.Open();
    CHECK(gate.result.get().ok());
    for (auto& job : jobs) CHECK(job.result.get().ok());
    const uint64_t switches = w.pool->Stats().workers[0].switches;
    if (policy == "modelpool") {
      CHECK(r.order == std::vector<int>{10, 11, 12, 20, 21, 22});
      CHECK(switches == 1);
      CHECK(a->loads + b->loads == 2);
    } else {
      CHECK(r.order == std::vector<int>{10, 20, 11, 21, 12, 22});
      CHECK(switches == 5);
      CHECK(a->loads + b->loads == 6);
    }
    CHECK(w.gpus->over_budget == 0);
  }
}

TEST_CASE("max_switches_per_hour holds: a worker at the limit waits for the hour to roll") {
  WorkerSettings settings = Workers(1);
  settings.max_switches_per_hour = 1;
  SchedulerWorld w(1, 10 * kGiB, settings);
  w.Add({.name = "a", .instance_bytes = kGiB});
  w.Add({.name = "b", .instance_bytes = kGiB});
  REQUIRE(w.Submit("a").result.get().ok());
  REQUIRE(w.Submit("b").result.get().ok());
  const absl::Time first_switch = w.clock.Now();
  JobHandle<int64_t> again = w.Submit("a");
  REQUIRE(w.WaitingOnTime());
  CHECK(w.pool->Poll(again.id)->state == JobState::kQueued);
  CHECK(w.pool->Stats().workers[0].switches_this_hour == 1);
  w.clock.Advance(absl::Minutes(61));
  REQUIRE(again.result.get().ok());
  CHECK(w.pool->Poll(again.id)->at(JobState::kRunning) >= first_switch + absl::Hours(1));
  CHECK(w.pool->Stats().workers[0].switches == 2);
  CHECK(w.pool->Stats().workers[0].switches_this_hour == 1);
}

TEST_CASE("max_concurrent and max_instances cap a model; other work goes on meanwhile") {
  SECTION("concurrency") {
    SchedulerWorld w(1, 10 * kGiB, Workers(2));
    w.Add({.name = "a", .instance_bytes = kGiB}, {.max_concurrent = 1});
    w.Add({.name = "b", .instance_bytes = kGiB});
    JobHandle<int64_t> gate = w.SubmitGate("a");
    REQUIRE(Eventually([&] { return w.StatsOf("a").workers == 1; }));
    JobHandle<int64_t> second = w.Submit("a");
    REQUIRE(w.Submit("b").result.get().ok());  // the free worker passed `second` over
    CHECK(w.pool->Poll(second.id)->state == JobState::kQueued);
    w.Open();
    CHECK(second.result.get().ok());
    CHECK(w.managers["a"]->loads == 1);
  }
  SECTION("instances") {
    SchedulerWorld w(2, 10 * kGiB, Workers(1));
    w.Add({.name = "a", .instance_bytes = kGiB}, {.max_instances = 1});
    w.Add({.name = "b", .instance_bytes = kGiB});
    JobHandle<int64_t> gate = w.SubmitGate("a");
    REQUIRE(Eventually([&] { return w.StatsOf("a").running == 1; }));
    JobHandle<int64_t> second = w.Submit("a");
    REQUIRE(w.Submit("b").result.get().ok());
    CHECK(w.pool->Poll(second.id)->state == JobState::kQueued);
    w.Open();
    CHECK(second.result.get().ok());
    CHECK(w.managers["a"]->loads == 1);
  }
}

TEST_CASE("Idle instances unload after their keep-alive; 0 right after use, negative never") {
  SchedulerWorld w(1, 10 * kGiB, Workers(1));
  w.Add({.name = "now", .instance_bytes = kGiB}, {.keep_alive = absl::ZeroDuration()});
  w.Add({.name = "five", .instance_bytes = kGiB}, {.keep_alive = absl::Minutes(5)});
  w.Add({.name = "never", .instance_bytes = kGiB}, {.keep_alive = absl::Seconds(-1)});
  for (const char* name : {"now", "five", "never"}) REQUIRE(w.Submit(name).result.get().ok());
  // The counter moves once the unload has returned, after the instance is gone.
  REQUIRE(Eventually([&] { return w.LoadedOn("now").empty() && w.StatsOf("now").unloads == 1; }));
  w.clock.Advance(absl::Minutes(4));
  CHECK(w.LoadedOn("five") == std::map<int, int>{{0, 1}});
  w.clock.Advance(absl::Minutes(2));
  REQUIRE(Eventually([&] { return w.LoadedOn("five").empty() && w.StatsOf("five").unloads == 1; }));
  w.clock.Advance(absl::Hours(24));
  REQUIRE(Eventually([&] { return w.pool->Stats().workers[0].state == WorkerState::kIdle; }));
  CHECK(w.LoadedOn("never") == std::map<int, int>{{0, 1}});
  // The unloads gave their memory back: only "never" holds any.
  CHECK(w.gpus->Used(0) == kGiB);
  const DeviceMemoryStats device = w.pool->Stats().devices.at(0);
  CHECK(device.used_bytes == kGiB);
  CHECK(device.unloads_not_freed == 0);
}

// Regression: a worker that hands an instance back re-armed its unload before the lease was
// released, so the timer, woken in between, could find it still held and give the unload up
// for good. Each round jumps the clock past the keep-alive while the worker still holds the
// instance (it lingers after its request), so that the unload depends on that hand-back.
TEST_CASE("An instance whose keep-alive passed while a worker held it unloads once handed back") {
  SchedulerWorld w(1, 10 * kGiB, Workers(1));
  w.Add({.name = "a", .instance_bytes = kGiB}, {.keep_alive = absl::Minutes(10)});
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    REQUIRE(w.Submit("a").result.get().ok());
    w.clock.Advance(absl::Minutes(11));
    REQUIRE(Eventually([&] { return w.LoadedOn("a").empty(); }));
  }
  // The counter moves once the last unload has returned, after the instance is gone.
  CHECK(Eventually([&] { return w.StatsOf("a").unloads == kRounds; }));
  CHECK(w.gpus->Used(0) == 0);
}

TEST_CASE("Jobs have ids, states with timestamps, and Poll, Wait and Cancel") {
  SchedulerWorld w(1, 10 * kGiB, Workers(1));
  w.Add({.name = "a", .instance_bytes = kGiB});
  JobHandle<int64_t> gate = w.SubmitGate("a");
  REQUIRE(Eventually([&] { return w.pool->Poll(gate.id)->state == JobState::kRunning; }));
  JobHandle<int64_t> second = w.Submit("a");
  JobHandle<int64_t> third = w.Submit("a");
  CHECK(second.id != gate.id);
  CHECK(w.pool->Poll(second.id)->state == JobState::kQueued);
  CHECK(w.pool->Cancel(third.id).ok());
  CHECK(third.result.get().status().code() == absl::StatusCode::kCancelled);
  CHECK(w.pool->Poll(third.id)->state == JobState::kCancelled);
  CHECK(w.pool->Cancel(gate.id).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(w.pool->Cancel(987654).code() == absl::StatusCode::kNotFound);
  CHECK(w.pool->Wait(second.id, absl::Milliseconds(1)).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
  w.Open();
  absl::StatusOr<JobInfo> done = w.pool->Wait(second.id, absl::Seconds(30));
  REQUIRE(done.ok());
  CHECK(done->state == JobState::kSucceeded);
  CHECK(done->status.ok());
  CHECK(done->model_id == "a");
  CHECK(done->device == Device::Cuda(0));
  CHECK(done->at(JobState::kPending) <= done->at(JobState::kQueued));
  CHECK(done->at(JobState::kQueued) <= done->at(JobState::kRunning));
  CHECK(done->at(JobState::kRunning) <= done->at(JobState::kSucceeded));
  CHECK(done->at(JobState::kLoading) == absl::InfinitePast());  // the gate's load served it
  CHECK(w.pool->Poll(gate.id)->at(JobState::kLoading) != absl::InfinitePast());
  CHECK(w.pool->Cancel(second.id).code() == absl::StatusCode::kFailedPrecondition);
  JobHandle<int64_t> unknown = w.Submit("nope");
  CHECK(unknown.result.get().status().code() == absl::StatusCode::kNotFound);
  CHECK(w.pool->Poll(unknown.id)->state == JobState::kFailed);
}

TEST_CASE("PreloadModel reserves: it takes no worker and no memory from queued work") {
  // Regression: preloading another model took every worker of the one with queued requests,
  // which then failed, and that model could not be served afterwards.
  SchedulerWorld w(1, 5 * kGiB, Workers(1));
  w.Add({.name = "a", .instance_bytes = 2 * kGiB});
  w.Add({.name = "b", .instance_bytes = 3 * kGiB / 2});
  JobHandle<int64_t> gate = w.SubmitGate("a");
  REQUIRE(Busy(w));
  std::vector<JobHandle<int64_t>> queued;
  for (int i = 0; i < 6; ++i) queued.push_back(w.Submit("a"));
  REQUIRE(w.pool->PreloadModel("b", 2).ok());
  CHECK(w.LoadedOn("b") == std::map<int, int>{{0, 2}});
  CHECK(w.pool->Stats().workers[0].model_id == "a");
  // No room for a third b without evicting a, whose requests wait: refused, nothing evicted.
  CHECK(w.pool->PreloadModel("b", 3).code() == absl::StatusCode::kResourceExhausted);
  w.Open();
  CHECK(gate.result.get().ok());
  for (auto& job : queued) CHECK(job.result.get().ok());
  CHECK(w.Submit("a").result.get().ok());
  CHECK(w.StatsOf("a").evictions == 0);
  CHECK(w.StatsOf("a").failed == 0);
  CHECK(w.gpus->over_budget == 0);
}

TEST_CASE("A model goes to its preferred device, and only to a required one") {
  SchedulerWorld w(2, 10 * kGiB, Workers(1));
  w.Add({.name = "p", .instance_bytes = kGiB},
        {.affinity = ModelOptions::Affinity::kPrefer, .device = Device::Cuda(1)});
  w.Add({.name = "r", .instance_bytes = kGiB},
        {.affinity = ModelOptions::Affinity::kRequire, .device = Device::Cuda(0)});
  REQUIRE(w.Submit("p").result.get().ok());
  CHECK(w.LoadedOn("p") == std::map<int, int>{{1, 1}});
  std::vector<JobHandle<int64_t>> jobs;
  for (int i = 0; i < 8; ++i) jobs.push_back(w.Submit("r"));
  for (auto& job : jobs) {
    REQUIRE(job.result.get().ok());
    CHECK(w.pool->Poll(job.id)->device == Device::Cuda(0));
  }
  CHECK(w.LoadedOn("r") == std::map<int, int>{{0, 1}});
}

TEST_CASE(
    "Round robin: a worker takes the requests waiting for it, even if another need not load") {
  // Regression: the worker a request waited for deferred its load to a free worker that held an
  // idle instance, which could not take the request: it waited forever.
  WorkerSettings settings = Workers(1);
  settings.load_balancing = LoadBalancing::kRoundRobin;
  SchedulerWorld w(2, 10 * kGiB, settings);
  w.Add({.name = "a", .instance_bytes = kGiB});
  for (int i = 0; i < 6; ++i) REQUIRE(w.Submit("a").result.get().ok());
  CHECK(w.LoadedOn("a") == std::map<int, int>{{0, 1}, {1, 1}});
  for (const WorkerStats& s : w.pool->Stats().workers) CHECK(s.completed >= 2);
}

TEST_CASE("A load goes where it fits rather than where it would evict") {
  SchedulerWorld w(2, 3 * kGiB, Workers(1));
  w.Add({.name = "x", .instance_bytes = 2 * kGiB},
        {.affinity = ModelOptions::Affinity::kPrefer, .device = Device::Cuda(0)});
  w.Add({.name = "y", .instance_bytes = 2 * kGiB});
  REQUIRE(w.Submit("x").result.get().ok());
  REQUIRE(w.LoadedOn("x") == std::map<int, int>{{0, 1}});
  REQUIRE(w.Submit("y").result.get().ok());
  CHECK(w.LoadedOn("y") == std::map<int, int>{{1, 1}});
  CHECK(w.LoadedOn("x") == std::map<int, int>{{0, 1}});
  CHECK(w.StatsOf("x").evictions == 0);
}

TEST_CASE("Instances on one device share their weights: a second costs its workspace") {
  SchedulerWorld w(1, 6 * kGiB, Workers(2));
  auto bert = w.Add({.name = "bert", .shared_bytes = 3 * kGiB, .instance_bytes = kGiB});
  JobHandle<int64_t> first = w.SubmitGate("bert");
  JobHandle<int64_t> second = w.SubmitGate("bert");
  // Two instances take 3 + 1 + 1 GiB; without sharing they would need 8.
  REQUIRE(Eventually([&] { return w.LoadedOn("bert") == std::map<int, int>{{0, 2}}; }));
  // The fake GPU counts an instance's memory as its load returns, after it is listed.
  CHECK(Eventually([&] { return w.gpus->Used(0) == 5 * kGiB; }));
  CHECK(w.pool->Stats().devices.at(0).used_bytes == 5 * kGiB);
  const MemoryFootprint measured = bert->footprint(Device::Cuda(0));
  CHECK(measured.shared_bytes == 3 * kGiB);
  CHECK(measured.instance_bytes == kGiB);
  w.Open();
  CHECK(first.result.get().ok());
  CHECK(second.result.get().ok());
  CHECK(w.gpus->over_budget == 0);
}

}  // namespace
}  // namespace modelpool
