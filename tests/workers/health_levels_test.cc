// How a worker pool grades its health beyond failures: latency against the model's own
// baseline, memory pressure on a device, and deep checks on the health-check interval.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "modelpool/base/fake_clock.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "tests/testing/eventually.h"
#include "tests/workers/fault_world.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;
using ::modelpool::testing::FakeModel;
using ::modelpool::testing::Get;
using ::modelpool::testing::NoBreakers;
using ::modelpool::testing::Result;
using ::modelpool::testing::World;

TEST_CASE("A model whose recent p99 latency is far above its baseline is degraded") {
  FailureSettings failures = NoBreakers();
  failures.latency_window = 5;
  failures.latency_factor = 3;
  World w(1, failures);
  for (int i = 0; i < 5; ++i) {  // the baseline: quick requests
    Result quick = w.Submit({.value = i});
    REQUIRE(Get(quick).ok());
  }
  CHECK(w.Model().health.level == HealthLevel::kHealthy);
  const absl::Duration baseline = w.Model().latency_baseline;
  CHECK(baseline > absl::ZeroDuration());
  // Then each takes 10x the baseline, and at least 100 ms: past 3x the baseline and 1 ms,
  // however slow the quick ones were on this machine.
  const absl::Duration work = std::max(absl::Milliseconds(100), 10 * baseline);
  for (int i = 0; i < 5; ++i) {
    Result slow = w.Submit({.value = i, .work = work});
    REQUIRE(Get(slow).ok());
  }
  const ModelStats m = w.Model();
  CHECK(m.latency_p99 >= work);
  CHECK(m.health.level == HealthLevel::kDegraded);
  CHECK_THAT(m.health.reason, Catch::Contains("its baseline"));
  CHECK(w.pool->Stats().health.level == HealthLevel::kDegraded);
}

TEST_CASE("A device used past memory_pressure of its budget degrades its workers and models") {
  for (const double pressure : {0.95, 0.001}) {
    INFO("memory_pressure " << pressure);
    FailureSettings failures = NoBreakers();
    failures.memory_pressure = pressure;
    World w(1, failures);
    Result loaded = w.Submit({.value = 1});  // one instance: a few GiB of a 64 GiB budget
    REQUIRE(Get(loaded).ok());
    const WorkerPoolStats stats = w.pool->Stats();
    const HealthLevel expected = pressure < 0.5 ? HealthLevel::kDegraded : HealthLevel::kHealthy;
    CHECK(stats.models.at(0).health.level == expected);
    CHECK(stats.workers.at(0).health.level == expected);
    if (expected == HealthLevel::kDegraded) {
      CHECK_THAT(stats.models.at(0).health.reason, Catch::Contains("memory pressure"));
    }
  }
}

TEST_CASE("Deep checks run on the health-check interval of the pool's clock") {
  auto checks = std::make_shared<std::atomic<int>>(0);
  FailureSettings failures = NoBreakers();
  failures.health_check_interval = absl::Minutes(1);
  FakeClock clock;
  World w(1, failures, nullptr, &clock, [checks](FakeModel&) {
    ++*checks;
    return absl::OkStatus();
  });
  Result first = w.Submit({.value = 1});
  REQUIRE(Get(first).ok());
  CHECK(*checks == 0);  // none before the interval has passed
  clock.Advance(absl::Seconds(61));
  CHECK(Eventually([&] { return *checks == 1 && w.Model().checks == 1; }));
  clock.Advance(absl::Seconds(61));
  CHECK(Eventually([&] { return *checks == 2; }));
  const ModelStats m = w.Model();
  CHECK(m.health.last_check_passed);
  CHECK(m.health.last_check != absl::InfinitePast());
  CHECK(m.checks_failed == 0);
}

}  // namespace
}  // namespace modelpool
