#include "modelpool/workers/ordered_stream.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "tests/workers/fake_model.h"

namespace modelpool {
namespace {

using ::modelpool::testing::FakeModel;
using ::modelpool::testing::FakeModelManager;
using ::modelpool::testing::FakeRequest;

struct Setup {
  Setup() {
    inventory = FakeModelManager::Inventory(2);
    manager = FakeModelManager::Create({}, inventory);
    REQUIRE(manager != nullptr);
    WorkerSettings workers;
    workers.workers_per_device = 2;
    auto created = GenericWorkerPool::Create(
        {.settings = Settings{}, .workers = workers, .inventory = inventory});
    REQUIRE(created.ok());
    pool = *std::move(created);
    REQUIRE(pool->RegisterModel<FakeModel>("fake", manager).ok());
  }
  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<FakeModelManager> manager;
  std::unique_ptr<GenericWorkerPool> pool;
};

// Doubles every input; a batch holding a multiple of 1000 fails. Takes a little time.
absl::StatusOr<std::vector<int>> DoubleBatch(FakeModel& model, const std::vector<int>& inputs) {
  std::vector<int> out;
  for (int x : inputs) {
    absl::StatusOr<int> y =
        model.Run({.value = x, .work = absl::Microseconds(20), .fail = x > 0 && x % 1000 == 0});
    if (!y.ok()) return y.status();
    out.push_back(*y);
  }
  return out;
}

TEST_CASE("MapBatches returns every output in input order and reports progress") {
  Setup s;
  std::vector<std::vector<int>> batches;
  for (int b = 0; b < 40; ++b) {
    std::vector<int> batch;
    for (int i = 0; i < 1 + b % 7; ++i) batch.push_back(1 + b * 10 + i);
    batches.push_back(batch);
  }
  std::vector<int> expected;
  for (const auto& batch : batches) {
    for (int x : batch) expected.push_back(2 * x);
  }
  std::vector<int64_t> progress;
  auto out = s.pool->MapBatches<FakeModel, int, int>(
      "fake", batches, DoubleBatch, {.on_progress = [&](int64_t done, int64_t total) {
        CHECK(total == static_cast<int64_t>(expected.size()));
        progress.push_back(done);
      }});
  REQUIRE(out.ok());
  CHECK(*out == expected);
  REQUIRE(progress.size() == batches.size());
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == static_cast<int64_t>(expected.size()));
}

TEST_CASE("MapBatches returns the failing batch's error") {
  Setup s;
  std::vector<std::vector<int>> batches = {{1, 2}, {3, 1000}, {5}};
  auto out = s.pool->MapBatches<FakeModel, int, int>("fake", batches, DoubleBatch);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == absl::StatusCode::kInternal);
  CHECK_THAT(std::string(out.status().message()), Catch::Contains("batch 1 of 3"));
}

TEST_CASE("A stream with a slow consumer stays within its bound and keeps order") {
  Setup s;
  constexpr int kItems = 3000;
  constexpr int64_t kBound = 64;
  OrderedStream<FakeModel, int, int> stream(s.pool.get(), "fake", DoubleBatch, nullptr,
                                            {.max_batch_cost = 8, .max_in_flight = kBound});
  std::atomic<int64_t> worst{0};
  std::vector<absl::Status> push_errors;
  std::thread producer([&] {
    for (int i = 1; i <= kItems; ++i) {
      absl::Status pushed = stream.Push(i);
      if (!pushed.ok()) push_errors.push_back(pushed);
      const int64_t now = stream.in_flight();
      int64_t seen = worst.load();
      while (now > seen && !worst.compare_exchange_weak(seen, now)) {
      }
    }
    stream.Close();
  });
  std::vector<int> got;
  int errors = 0;
  for (;;) {
    absl::StatusOr<std::optional<int>> next = stream.Next();
    if (!next.ok()) {
      ++errors;  // the batches holding 1000, 2000 and 3000 fail
      got.push_back(-1);
      continue;
    }
    if (!next->has_value()) break;
    got.push_back(**next);
    if (got.size() % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  producer.join();
  CHECK(push_errors.empty());
  REQUIRE(got.size() == kItems);
  int out_of_order = 0;
  for (int i = 1; i <= kItems; ++i) {
    if (got[i - 1] != -1 && got[i - 1] != 2 * i) ++out_of_order;
  }
  CHECK(out_of_order == 0);
  CHECK(errors >= 3);
  CHECK(errors <= 3 * 8);
  CHECK(worst.load() <= kBound);
}

TEST_CASE("Next flushes a partial batch instead of waiting for more input") {
  Setup s;
  OrderedStream<FakeModel, int, int> stream(s.pool.get(), "fake", DoubleBatch, nullptr,
                                            {.max_batch_cost = 1000});
  REQUIRE(stream.Push(21).ok());
  absl::StatusOr<std::optional<int>> next = stream.Next(absl::Seconds(10));
  REQUIRE(next.ok());
  CHECK(next->value() == 42);
  CHECK(stream.Next(absl::Milliseconds(10)).status().code() == absl::StatusCode::kDeadlineExceeded);
  stream.Close();
  CHECK_FALSE(stream.Next()->has_value());
  CHECK(stream.Push(1).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Push times out when the consumer takes nothing") {
  Setup s;
  OrderedStream<FakeModel, int, int> stream(s.pool.get(), "fake", DoubleBatch, nullptr,
                                            {.max_batch_cost = 2, .max_in_flight = 4});
  for (int i = 1; i <= 4; ++i) REQUIRE(stream.Push(i).ok());
  CHECK(stream.Push(5, absl::Milliseconds(20)).code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(stream.Next()->value() == 2);
  CHECK(stream.Push(5, absl::Seconds(10)).ok());
}

}  // namespace
}  // namespace modelpool
