// Chaos: 16 threads submit jobs to three fake models while the fault injector makes 5% of the
// model calls throw, stall past their execution timeout or run out of memory, and 5% of the
// loads fail. Every job must end exactly once, every success must be what a run without faults
// gives, the test must end within its bound, and the pool must be healthy again once the
// faults stop. Its counts are printed for the record.
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "tests/testing/eventually.h"
#include "tests/workers/fake_model.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;
using ::modelpool::testing::FakeRequest;

constexpr int kThreads = 16;
constexpr int kModels = 3;
// Some 5 s under ThreadSanitizer on two cores, most of it the stalls.
constexpr int kJobs = 20000;

// What a job of `model` on `value` returns without faults.
int Expected(int model, int value) { return 2 * value + 1000000 * model; }

// Counts each job's end as the listeners hear it.
class Endings : public WorkerPoolListener {
 public:
  void OnJobEnded(const JobInfo& job) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++ends_[job.id];
  }
  std::unordered_map<JobId, int> ends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ends_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<JobId, int> ends_;
};

struct Outcomes {
  int ok = 0, wrong = 0, unexpected = 0, not_ready = 0;
  std::map<absl::StatusCode, int> failed;
};

TEST_CASE("Chaos: every job ends once, successes are right, the pool heals") {
  FakeModelManager::Options options;
  options.gpus = 2;
  // Room for the instances the stalled calls keep until they return.
  options.max_instances = 16;
  auto inventory = FakeModelManager::Inventory(2);
  WorkerSettings workers;
  workers.workers_per_device = 4;
  FailureSettings& f = workers.failures;
  f.restart_backoff_base = absl::Milliseconds(1);
  f.restart_backoff_cap = absl::Milliseconds(20);
  f.restart_max_attempts = 50;
  f.execution_timeout = absl::Milliseconds(20);
  f.breaker_failures = 4;
  f.breaker_error_rate = 0;
  f.breaker_cooldown = absl::Milliseconds(10);
  f.breaker_probes = 1;
  f.health_check_interval = absl::ZeroDuration();
  f.latency_factor = 0;
  auto faults = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{
          {.kind = FaultKind::kThrow, .probability = 0.05},
          {.kind = FaultKind::kStall, .probability = 0.05, .stall = absl::Milliseconds(200)},
          {.kind = FaultKind::kOutOfMemory, .probability = 0.05},
          {.kind = FaultKind::kFailLoad, .probability = 0.05}},
      /*seed=*/14);
  auto created = GenericWorkerPool::Create({.settings = Settings{},
                                            .workers = workers,
                                            .inventory = inventory,
                                            .shutdown_drain_timeout = absl::Seconds(5),
                                            .faults = faults});
  REQUIRE(created.ok());
  std::unique_ptr<GenericWorkerPool> pool = *std::move(created);
  std::vector<std::shared_ptr<FakeModelManager>> managers;
  for (int m = 0; m < kModels; ++m) {
    managers.push_back(FakeModelManager::Create(options, inventory));
    REQUIRE(managers.back() != nullptr);
    REQUIRE(pool->RegisterModel<FakeModel>(absl::StrCat("m", m), managers.back()).ok());
  }
  auto endings = std::make_shared<Endings>();
  pool->AddListener(endings);

  auto submit = [&](int model, int value) {
    return pool->SubmitJob<FakeModel, int>(
        absl::StrCat("m", model), [model, value](FakeModel& instance) -> absl::StatusOr<int> {
          absl::StatusOr<int> r = instance.Run(FakeRequest{.value = value});
          if (!r.ok()) return r.status();
          return *r + 1000000 * model;
        });
  };

  std::vector<Outcomes> outcomes(kThreads);
  std::vector<std::vector<JobId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<int, JobHandle<int>>> mine;
      for (int i = t; i < kJobs; i += kThreads) {
        mine.emplace_back(i, submit(i % kModels, i));
        ids[t].push_back(mine.back().second.id);
      }
      for (auto& [i, job] : mine) {
        if (job.result.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
          ++outcomes[t].not_ready;
          continue;
        }
        const absl::StatusOr<int> r = job.result.get();
        if (r.ok()) {
          ++(*r == Expected(i % kModels, i) ? outcomes[t].ok : outcomes[t].wrong);
          continue;
        }
        switch (r.status().code()) {
          case absl::StatusCode::kInternal:           // thrown
          case absl::StatusCode::kDeadlineExceeded:   // stalled past the execution timeout
          case absl::StatusCode::kResourceExhausted:  // out of memory, even on the retry
          case absl::StatusCode::kUnavailable:        // every circuit of the model open
            ++outcomes[t].failed[r.status().code()];
            break;
          default:
            ++outcomes[t].unexpected;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  Outcomes sum;
  for (const Outcomes& o : outcomes) {
    sum.ok += o.ok;
    sum.wrong += o.wrong;
    sum.unexpected += o.unexpected;
    sum.not_ready += o.not_ready;
    for (const auto& [code, n] : o.failed) sum.failed[code] += n;
  }
  int failed = 0;
  for (const auto& [code, n] : sum.failed) failed += n;
  CHECK(sum.not_ready == 0);
  CHECK(sum.wrong == 0);
  CHECK(sum.unexpected == 0);
  CHECK(sum.ok + failed == kJobs);

  // Every job ended once, as the listeners heard it.
  REQUIRE(Eventually([&] { return endings->ends().size() == static_cast<size_t>(kJobs); },
                     absl::Seconds(60)));
  const std::unordered_map<JobId, int> ends = endings->ends();
  int once = 0;
  for (const std::vector<JobId>& mine : ids) {
    for (JobId id : mine) {
      auto it = ends.find(id);
      once += it != ends.end() && it->second == 1 ? 1 : 0;
    }
  }
  CHECK(once == kJobs);

  const WorkerPoolStats during = pool->Stats();
  const FaultInjector::Counts injected = faults->counts();
  uint64_t restarts = 0, openings = 0, hung = 0, threads_started = 0;
  for (const ModelStats& m : during.models) {
    restarts += m.restarts;
    hung += m.hung;
    for (const ModelStats::OnDevice& d : m.on_devices) openings += d.circuit_openings;
  }
  for (const WorkerStats& w : during.workers) threads_started += w.threads;
  CHECK(injected.thrown > 0);
  CHECK(injected.stalled > 0);
  CHECK(injected.out_of_memory > 0);
  CHECK(during.invalid_transitions == 0);

  // The faults stop: the pool heals (circuits close, restarts load, stuck calls return).
  faults->SetEnabled(false);
  faults->ReleaseStalls();
  int value = kJobs;
  bool round_ok = false;
  const bool healed = Eventually(
      [&] {
        std::vector<std::pair<int, JobHandle<int>>> round;
        for (int i = 0; i < 3 * kModels; ++i, ++value) {
          round.emplace_back(value, submit(value % kModels, value));
        }
        round_ok = true;
        for (auto& [v, job] : round) {
          const absl::StatusOr<int> r = job.result.get();
          round_ok = round_ok && r.ok() && *r == Expected(v % kModels, v);
        }
        const WorkerPoolStats now = pool->Stats();
        return round_ok && now.health.level == HealthLevel::kHealthy && now.stuck_calls == 0;
      },
      absl::Seconds(30));
  const WorkerPoolStats after = pool->Stats();
  INFO("health after the faults: " << HealthLevelName(after.health.level) << " "
                                   << after.health.reason);
  CHECK(healed);
  CHECK(round_ok);

  std::cout << "chaos: " << kJobs << " jobs, " << sum.ok << " succeeded, "
            << sum.failed[absl::StatusCode::kInternal] << " internal, "
            << sum.failed[absl::StatusCode::kDeadlineExceeded] << " deadline exceeded, "
            << sum.failed[absl::StatusCode::kResourceExhausted] << " resource exhausted, "
            << sum.failed[absl::StatusCode::kUnavailable] << " unavailable; lost " << kJobs - once
            << "; injected " << injected.thrown << " throws, " << injected.stalled << " stalls, "
            << injected.out_of_memory << " out of memory, " << injected.failed_loads
            << " failed loads (of " << injected.calls << " calls and " << injected.loads
            << " loads); " << restarts << " restarts, " << openings << " circuit openings, " << hung
            << " hung requests, " << threads_started << " worker threads\n";
}

}  // namespace
}  // namespace modelpool
