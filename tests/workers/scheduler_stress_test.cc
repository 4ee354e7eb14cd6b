// The scheduler under load: 3 models on 2 GPUs that hold 2 of
// them each, 16 submitting threads, models by a skewed popularity, random classes and deadlines.
// Time is a fake clock that moves with the work (requests and loads advance it by what they
// cost) and, when every worker waits on time alone, with a ticker; so the assertions on time
// below depend on what ran, not on how fast the machine ran it.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "tests/workers/scheduler_world.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeMemoryModel;
using ::modelpool::testing::FakeSpec;
using ::modelpool::testing::kGiB;
using ::modelpool::testing::SchedulerWorld;

constexpr int kThreads = 16;
constexpr int kPerThread = 150;
constexpr int kOutstanding = 4;  // per thread: each waits for its oldest beyond this
constexpr int kMaxTokens = 512;
constexpr absl::Duration kPerToken = absl::Microseconds(10);
constexpr absl::Duration kLoadTime = absl::Milliseconds(50);
constexpr absl::Duration kAging = absl::Milliseconds(200);
constexpr int kSwitchCap = 12;

struct Submitted {
  JobId id = 0;
  std::string model;
  Priority priority = Priority::kNormal;
  std::future<absl::StatusOr<int64_t>> result;
  absl::StatusOr<int64_t> outcome = absl::UnknownError("not collected");
};

// Jumps of the clock the ticker made, to tell time-driven waits from waits behind work.
struct Ticks {
  std::mutex mu;
  std::vector<std::pair<absl::Time, absl::Duration>> jumps;  // (time the jump reached, size)
  // How much of [from, to] the jumps covered.
  absl::Duration Within(absl::Time from, absl::Time to) {
    std::lock_guard<std::mutex> lock(mu);
    absl::Duration sum;
    for (const auto& [reached, size] : jumps) {
      const absl::Time begin = std::max(from, reached - size), end = std::min(to, reached);
      if (end > begin) sum += end - begin;
    }
    return sum;
  }
};

TEST_CASE("Under 16 submitting threads every rule holds and every job ends exactly once") {
  WorkerSettings workers = testing::Workers(2);
  workers.aging_bound = kAging;
  workers.max_switches_per_hour = kSwitchCap;
  workers.keep_alive_gpu = absl::Minutes(10);
  SchedulerWorld w(2, 10 * kGiB, workers, absl::Minutes(10), /*estimate_factor=*/1.3);
  // Each GPU holds two models' first instances (4 GiB each) and one more instance (2 GiB); the
  // estimates are low, the factor makes up for it.
  for (const char* name : {"a", "b", "c"}) {
    w.Add(FakeSpec{.name = name,
                   .shared_bytes = 2 * kGiB,
                   .instance_bytes = 2 * kGiB,
                   .load_time = kLoadTime,
                   .per_token = kPerToken,
                   .estimate_share = 1 / 1.2});
  }
  std::vector<std::atomic<int>> runs(kThreads * kPerThread);
  std::vector<std::vector<Submitted>> submitted(kThreads);
  std::atomic<int> finished_threads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      // Popularity 60/25/15; classes 10/20/40/15/15; a deadline on 30% of the requests.
      std::discrete_distribution<int> model_of({60, 25, 15});
      std::discrete_distribution<int> class_of({10, 20, 40, 15, 15});
      std::uniform_int_distribution<int> tokens_of(1, kMaxTokens);
      std::uniform_int_distribution<int> deadline_ms(20, 3000);
      std::vector<Submitted>& mine = submitted[t];
      for (int i = 0; i < kPerThread; ++i) {
        const int index = t * kPerThread + i;
        const int64_t tokens = tokens_of(rng);
        SubmitOptions options{.priority_class = static_cast<Priority>(class_of(rng)),
                              .tokens = tokens};
        if (rng() % 10 < 3) options.deadline = w.clock.Now() + absl::Milliseconds(deadline_ms(rng));
        Submitted s;
        s.model = std::string(1, static_cast<char>('a' + model_of(rng)));
        s.priority = options.priority_class;
        JobHandle<int64_t> job = w.pool->SubmitJob<FakeMemoryModel, int64_t>(
            s.model,
            [&runs, index, tokens](FakeMemoryModel& m) {
              ++runs[index];
              return m.Run(tokens);
            },
            options);
        s.id = job.id;
        s.result = std::move(job.result);
        mine.push_back(std::move(s));
        if (i >= kOutstanding) mine[i - kOutstanding].outcome = mine[i - kOutstanding].result.get();
      }
      for (int i = std::max(0, kPerThread - kOutstanding); i < kPerThread; ++i) {
        mine[i].outcome = mine[i].result.get();
      }
      ++finished_threads;
    });
  }
  // The ticker: when every worker waits on time alone (switch limits, deadlines, memory
  // retries), move the clock on. It also samples the switch limit as the workers see it.
  Ticks ticks;
  const absl::Time start = w.clock.Now();
  int over_switch_limit = 0;
  while (finished_threads < kThreads) {
    const WorkerPoolStats stats = w.pool->Stats();
    for (const WorkerStats& s : stats.workers) {
      if (s.switches_this_hour > kSwitchCap) ++over_switch_limit;
    }
    if (stats.waiting_on_time) {
      const absl::Time reached = w.clock.Advance(absl::Minutes(5));
      std::lock_guard<std::mutex> lock(ticks.mu);
      ticks.jumps.emplace_back(reached, absl::Minutes(5));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  for (auto& t : threads) t.join();

  // Every job ended once, and ran at most once; counters agree.
  std::map<JobState, int> states;
  int ran = 0;
  std::vector<JobInfo> batch;
  std::vector<absl::Time> critical_starts;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const Submitted& s = submitted[t][i];
      const int index = t * kPerThread + i;
      CHECK(runs[index] <= 1);
      ran += runs[index];
      absl::StatusOr<JobInfo> info = w.pool->Poll(s.id);
      REQUIRE(info.ok());
      REQUIRE(IsFinal(info->state));
      ++states[info->state];
      CHECK(s.outcome.ok() == (info->state == JobState::kSucceeded));
      CHECK(runs[index] == (info->state == JobState::kSucceeded ? 1 : 0));
      if (info->state != JobState::kSucceeded) {
        CHECK((info->state == JobState::kExpired || info->state == JobState::kFailed));
        continue;
      }
      if (s.priority == Priority::kBatch) batch.push_back(*info);
      if (s.priority == Priority::kCritical)
        critical_starts.push_back(info->at(JobState::kRunning));
    }
  }
  const int total = kThreads * kPerThread;
  CHECK(states[JobState::kSucceeded] + states[JobState::kExpired] + states[JobState::kFailed] ==
        total);
  CHECK(ran == states[JobState::kSucceeded]);
  CHECK(states[JobState::kSucceeded] > total / 2);
  // A request whose deadline had passed when it was submitted (others' work moves the clock)
  // ends at once as expired without counting as submitted.
  uint64_t submitted_total = 0, ended_total = 0, succeeded_total = 0;
  for (const ModelStats& m : w.pool->Stats().models) {
    submitted_total += m.submitted;
    succeeded_total += m.succeeded;
    ended_total += m.succeeded + m.failed + m.expired + m.cancelled + m.rejected;
  }
  CHECK(submitted_total <= static_cast<uint64_t>(total));
  CHECK(ended_total == static_cast<uint64_t>(total));
  CHECK(succeeded_total == static_cast<uint64_t>(states[JobState::kSucceeded]));
  INFO("succeeded " << states[JobState::kSucceeded] << ", expired " << states[JobState::kExpired]
                    << ", failed " << states[JobState::kFailed]);

  // The budget was never exceeded (checked at every load), and no instance was destroyed under
  // a running request.
  CHECK(w.gpus->over_budget == 0);
  CHECK(w.gpus->destroyed_while_running == 0);
  for (const DeviceMemoryStats& d : w.pool->Stats().devices) {
    CHECK(d.peak_used_bytes <= d.budget_bytes);
  }

  // No worker changed models more than the limit within any hour: as sampled, and in all (every
  // hour of the run holds at most the limit).
  CHECK(over_switch_limit == 0);
  const int64_t hours = absl::ToInt64Hours(w.clock.Now() - start) + 1;
  uint64_t switches = 0;
  for (const WorkerStats& s : w.pool->Stats().workers) {
    CHECK(s.switches <= static_cast<uint64_t>(kSwitchCap * hours));
    switches += s.switches;
  }
  INFO("switches " << switches << " over " << hours << " hour(s)");

  // A batch request starts within the aging bound, plus what was ahead of it once it aged: at
  // most every request outstanding then (each thread keeps kOutstanding) and those the workers
  // had taken, the kCritical requests that ran meanwhile (they outrank aged ones), each with a
  // load, plus the time the clock jumped while everything waited on it.
  std::sort(critical_starts.begin(), critical_starts.end());
  const absl::Duration each = kMaxTokens * kPerToken + kLoadTime;
  const absl::Duration ahead = (kThreads * kOutstanding + w.pool->num_workers()) * each;
  REQUIRE_FALSE(batch.empty());
  for (const JobInfo& job : batch) {
    const absl::Time queued = job.at(JobState::kQueued);
    const absl::Time started = job.at(JobState::kRunning);
    const auto critical =
        std::upper_bound(critical_starts.begin(), critical_starts.end(), started) -
        std::lower_bound(critical_starts.begin(), critical_starts.end(), queued);
    INFO("job " << job.id << " waited " << absl::FormatDuration(started - queued) << " with "
                << critical << " critical requests run meanwhile");
    CHECK(started - queued <= kAging + ahead + critical * each + ticks.Within(queued, started));
  }

  // Idle models unload after their keep-alive, and give their memory back.
  w.clock.Advance(absl::Minutes(11));
  REQUIRE(Eventually([&] {
    for (const ModelStats& m : w.pool->Stats().models) {
      if (!m.loaded.empty()) return false;
    }
    return true;
  }));
  CHECK(w.gpus->Used(0) == 0);
  CHECK(w.gpus->Used(1) == 0);
  CHECK(w.gpus->instances == 0);
  for (const DeviceMemoryStats& d : w.pool->Stats().devices) CHECK(d.used_bytes == 0);
}

}  // namespace
}  // namespace modelpool
