// Many threads acquiring and releasing a few instances with random timeouts; run under
// ThreadSanitizer in CI. Threads only record what they see; the main thread asserts.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "modelpool/pool/model_pool.h"

namespace modelpool {
namespace {

struct Instance {
  std::atomic<bool> leased{false};
};

struct ThreadReport {
  int acquired = 0;
  int timed_out = 0;
  int other_errors = 0;
  int double_leases = 0;
  int over_limit = 0;
  absl::Duration worst_overshoot;  // how far past its timeout a failed acquire returned
};

ThreadReport Hammer(ModelPool<Instance>& pool, std::atomic<int>& in_use, int limit, int cycles,
                    unsigned seed) {
  ThreadReport report;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> timeout_us(1, 2000);
  std::uniform_int_distribution<int> work(0, 3);
  for (int i = 0; i < cycles; ++i) {
    const absl::Duration timeout = absl::Microseconds(timeout_us(rng));
    const absl::Time start = absl::Now();
    absl::StatusOr<Lease<Instance>> lease = pool.Acquire(timeout);
    if (!lease.ok()) {
      if (lease.status().code() == absl::StatusCode::kDeadlineExceeded) {
        ++report.timed_out;
        report.worst_overshoot = std::max(report.worst_overshoot, absl::Now() - start - timeout);
      } else {
        ++report.other_errors;
      }
      continue;
    }
    ++report.acquired;
    if ((*lease)->leased.exchange(true)) ++report.double_leases;
    if (in_use.fetch_add(1) + 1 > limit) ++report.over_limit;
    for (int spin = work(rng); spin > 0; --spin) std::this_thread::yield();
    in_use.fetch_sub(1);
    (*lease)->leased.store(false);
  }
  return report;
}

TEST_CASE("32 threads x 20,000 cycles on 4 instances keep every pool invariant") {
  constexpr int kThreads = 32, kCycles = 20000, kInstances = 4;
  std::atomic<int> made{0};
  auto pool = ModelPool<Instance>::Create(
      {.max_instances = kInstances, .factory = [&]() -> absl::StatusOr<std::unique_ptr<Instance>> {
         ++made;
         return std::make_unique<Instance>();
       }});
  REQUIRE(pool.ok());
  std::atomic<int> in_use{0};
  std::vector<ThreadReport> reports(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { reports[t] = Hammer(**pool, in_use, kInstances, kCycles, t); });
  }
  for (auto& thread : threads) thread.join();

  ThreadReport sum;
  for (const ThreadReport& r : reports) {
    sum.acquired += r.acquired;
    sum.timed_out += r.timed_out;
    sum.other_errors += r.other_errors;
    sum.double_leases += r.double_leases;
    sum.over_limit += r.over_limit;
    sum.worst_overshoot = std::max(sum.worst_overshoot, r.worst_overshoot);
  }
  INFO("acquired " << sum.acquired << ", timed out " << sum.timed_out << ", worst overshoot "
                   << absl::FormatDuration(sum.worst_overshoot));
  CHECK(sum.acquired + sum.timed_out == kThreads * kCycles);
  CHECK(sum.other_errors == 0);
  CHECK(sum.double_leases == 0);
  CHECK(sum.over_limit == 0);
  CHECK(sum.acquired > 0);
  CHECK(sum.worst_overshoot <= absl::Milliseconds(50));

  const PoolStats s = (*pool)->Stats();
  CHECK(s.in_use == 0);
  CHECK(s.waiting == 0);
  CHECK(s.total == s.available);
  CHECK(s.total <= kInstances);
  CHECK(s.created == static_cast<uint64_t>(made.load()));
  CHECK(s.created - s.destroyed == static_cast<uint64_t>(s.total));
  CHECK(s.timeouts == static_cast<uint64_t>(sum.timed_out));
}

TEST_CASE("Shrinking and growing under load never leases an instance twice") {
  constexpr int kThreads = 8, kCycles = 3000;
  auto pool = ModelPool<Instance>::Create(
      {.max_instances = 4, .factory = []() -> absl::StatusOr<std::unique_ptr<Instance>> {
         return std::make_unique<Instance>();
       }});
  REQUIRE(pool.ok());
  std::atomic<int> in_use{0};
  std::atomic<bool> stop{false};
  std::vector<ThreadReport> reports(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(
        [&, t] { reports[t] = Hammer(**pool, in_use, 1 << 20, kCycles, 100 + t); });
  }
  std::thread resizer([&] {
    for (int i = 0; !stop.load(); ++i) {
      (*pool)->Resize(1 + i % 4);
      std::this_thread::yield();
    }
  });
  for (auto& thread : threads) thread.join();
  stop = true;
  resizer.join();
  (*pool)->Resize(2);

  int double_leases = 0, other_errors = 0;
  for (const ThreadReport& r : reports) {
    double_leases += r.double_leases;
    other_errors += r.other_errors;
  }
  CHECK(double_leases == 0);
  CHECK(other_errors == 0);
  const PoolStats s = (*pool)->Stats();
  CHECK(s.in_use == 0);
  CHECK(s.total <= 2);
  CHECK(s.created - s.destroyed == static_cast<uint64_t>(s.total));
}

}  // namespace
}  // namespace modelpool
