#include "modelpool/workers/worker_settings.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "modelpool/workers/job.h"
#include "tests/testing/fake_env.h"

namespace modelpool {
namespace {

using ::modelpool::testing::FakeEnv;

TEST_CASE("WorkerSettings::FromEnv keeps the defaults when nothing is set") {
  absl::StatusOr<WorkerSettings> s = WorkerSettings::FromEnv({}, FakeEnv({}));
  REQUIRE(s.ok());
  CHECK(s->workers_per_device == 1);
  CHECK(s->load_balancing == LoadBalancing::kLeastBusy);
  CHECK(s->worker_pool);
  CHECK(s->policy == "modelpool");
  CHECK(s->keep_alive_gpu == absl::Minutes(5));
  CHECK(s->keep_alive_cpu > s->keep_alive_gpu);
  CHECK(s->batch_window > absl::ZeroDuration());
  CHECK(s->max_batch_tokens > 0);
  CHECK(WorkerSettings::FromEnv({}, FakeEnv({{"MODELPOOL_BATCH_WINDOW", "0"}}))->batch_window ==
        absl::ZeroDuration());
}

TEST_CASE("WorkerSettings::FromEnv reads every variable") {
  absl::StatusOr<WorkerSettings> s =
      WorkerSettings::FromEnv({}, FakeEnv({{"MODELPOOL_WORKERS_PER_DEVICE", "2"},
                                           {"MODELPOOL_LOAD_BALANCING", "round_robin"},
                                           {"MODELPOOL_WORKER_POOL", "off"},
                                           {"MODELPOOL_SCHEDULING_POLICY", "FIFO-LRU"},
                                           {"MODELPOOL_KEEP_ALIVE_GPU", "90s"},
                                           {"MODELPOOL_KEEP_ALIVE_CPU", "-1"},
                                           {"MODELPOOL_AGING_BOUND", "2m"},
                                           {"MODELPOOL_MAX_SWITCHES_PER_HOUR", "30"},
                                           {"MODELPOOL_MAX_INSTANCES_PER_MODEL", "3"},
                                           {"MODELPOOL_MAX_CONCURRENT_PER_MODEL", "2"},
                                           {"MODELPOOL_JOB_HISTORY", "50"},
                                           {"MODELPOOL_BATCH_WINDOW", "5ms"},
                                           {"MODELPOOL_MAX_BATCH_TOKENS", "4096"}}));
  REQUIRE(s.ok());
  CHECK(s->workers_per_device == 2);
  CHECK(s->load_balancing == LoadBalancing::kRoundRobin);
  CHECK_FALSE(s->worker_pool);
  CHECK(s->policy == "fifo-lru");
  CHECK(s->keep_alive_gpu == absl::Seconds(90));
  CHECK(s->keep_alive_cpu == absl::Seconds(-1));
  CHECK(s->aging_bound == absl::Minutes(2));
  CHECK(s->max_switches_per_hour == 30);
  CHECK(s->max_instances_per_model == 3);
  CHECK(s->max_concurrent_per_model == 2);
  CHECK(s->job_history == 50);
  CHECK(s->batch_window == absl::Milliseconds(5));
  CHECK(s->max_batch_tokens == 4096);
}

TEST_CASE("WorkerSettings::FromEnv names the variable of a bad value") {
  const std::map<std::string, std::string> bad[] = {
      {{"MODELPOOL_WORKERS_PER_DEVICE", "0"}},
      {{"MODELPOOL_LOAD_BALANCING", "random"}},
      {{"MODELPOOL_WORKER_POOL", "sometimes"}},
      {{"MODELPOOL_SCHEDULING_POLICY", "lifo"}},
      {{"MODELPOOL_KEEP_ALIVE_GPU", "5 minutes"}},
      {{"MODELPOOL_KEEP_ALIVE_CPU", "1e99"}},
      {{"MODELPOOL_AGING_BOUND", "0"}},
      {{"MODELPOOL_MAX_SWITCHES_PER_HOUR", "-3"}},
      {{"MODELPOOL_MAX_INSTANCES_PER_MODEL", "x"}},
      {{"MODELPOOL_JOB_HISTORY", "99999999999"}},
      {{"MODELPOOL_BATCH_WINDOW", "-2ms"}},
      {{"MODELPOOL_BATCH_WINDOW", "1h"}},
      {{"MODELPOOL_MAX_BATCH_TOKENS", "0"}},
      {{"MODELPOOL_MAX_BATCH_TOKENS", "many"}},
  };
  for (const auto& vars : bad) {
    const std::string name = vars.begin()->first;
    INFO(name << "=" << vars.begin()->second);
    absl::StatusOr<WorkerSettings> s = WorkerSettings::FromEnv({}, FakeEnv(vars));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.status().message()).find(name) != std::string::npos);
  }
}

TEST_CASE("Priority classes read and print by their lower-case names") {
  for (Priority p : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow,
                     Priority::kBatch}) {
    absl::StatusOr<Priority> parsed = ParsePriority(PriorityName(p));
    REQUIRE(parsed.ok());
    CHECK(*parsed == p);
  }
  CHECK(*ParsePriority(" Critical ") == Priority::kCritical);
  CHECK(ParsePriority("urgent").status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelpool
