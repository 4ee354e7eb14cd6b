#include "modelpool/pool/model_pool.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "tests/testing/eventually.h"

namespace modelpool {
namespace {

using ::modelpool::testing::Eventually;

// An instance that counts how many of its kind are alive.
struct Counted {
  explicit Counted(int id, std::atomic<int>* live) : id(id), live(live) { ++*live; }
  ~Counted() { --*live; }
  int id;
  std::atomic<int>* live;
};

struct Fixture {
  std::atomic<int> live{0};
  std::atomic<int> made{0};

  std::unique_ptr<ModelPool<Counted>> MakePool(int max_instances) {
    auto pool = ModelPool<Counted>::Create(
        {.max_instances = max_instances,
         .factory = [this]() -> absl::StatusOr<std::unique_ptr<Counted>> {
           return std::make_unique<Counted>(made++, &live);
         }});
    REQUIRE(pool.ok());
    return *std::move(pool);
  }
};

TEST_CASE("Create rejects a missing factory and a negative size") {
  CHECK(ModelPool<Counted>::Create({.max_instances = 1}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ModelPool<Counted>::Create({.max_instances = -1,
                                    .factory =
                                        [] {
                                          return absl::StatusOr<std::unique_ptr<Counted>>(
                                              absl::UnknownError("unused"));
                                        }})
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Acquire creates instances on demand up to max_instances") {
  Fixture f;
  auto pool = f.MakePool(2);
  CHECK(pool->Stats().total == 0);
  auto a = pool->Acquire(absl::Seconds(1));
  auto b = pool->Acquire(absl::Seconds(1));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->id != (*b)->id);
  PoolStats s = pool->Stats();
  CHECK(s.in_use == 2);
  CHECK(s.total == 2);
  CHECK(s.created == 2);
  CHECK(s.available == 0);
  CHECK(f.live == 2);
}

TEST_CASE("Acquire times out when all instances are leased") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  const absl::Time start = absl::Now();
  auto second = pool->Acquire(absl::Milliseconds(50));
  const absl::Duration waited = absl::Now() - start;
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(waited >= absl::Milliseconds(50));
  CHECK(waited < absl::Seconds(2));
  CHECK(pool->Stats().timeouts == 1);
  CHECK(pool->Stats().waiting == 0);
}

TEST_CASE("TryAcquire fails at once when all instances are leased") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->TryAcquire();
  REQUIRE(held.ok());
  auto second = pool->TryAcquire();
  CHECK(second.status().code() == absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("A released instance is reused, not remade") {
  Fixture f;
  auto pool = f.MakePool(2);
  int first_id = -1;
  {
    auto lease = pool->Acquire(absl::Seconds(1));
    REQUIRE(lease.ok());
    first_id = (*lease)->id;
  }
  CHECK(pool->Stats().available == 1);
  auto again = pool->Acquire(absl::Seconds(1));
  REQUIRE(again.ok());
  CHECK((*again)->id == first_id);
  CHECK(pool->Stats().created == 1);
}

TEST_CASE("Release is idempotent and a moved-from lease is empty") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto lease = pool->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  Lease<Counted> moved = *std::move(lease);
  CHECK_FALSE(static_cast<bool>(*lease));
  lease->Release();  // empty: nothing happens
  CHECK(pool->Stats().in_use == 1);
  moved.Release();
  moved.Release();
  CHECK_FALSE(static_cast<bool>(moved));
  CHECK(pool->Stats().in_use == 0);
  CHECK(pool->Stats().available == 1);
}

TEST_CASE("Move-assigning a lease releases the one it replaces") {
  Fixture f;
  auto pool = f.MakePool(2);
  auto a = pool->Acquire(absl::Seconds(1));
  auto b = pool->Acquire(absl::Seconds(1));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  *a = *std::move(b);
  CHECK(pool->Stats().in_use == 1);
  CHECK(pool->Stats().available == 1);
}

TEST_CASE("destroy_after_use destroys the instance and frees its slot") {
  Fixture f;
  auto pool = f.MakePool(1);
  {
    auto lease = pool->Acquire(absl::Seconds(1), /*destroy_after_use=*/true);
    REQUIRE(lease.ok());
    CHECK(lease->destroy_after_use());
  }
  CHECK(f.live == 0);
  PoolStats s = pool->Stats();
  CHECK(s.total == 0);
  CHECK(s.destroyed == 1);
  auto next = pool->Acquire(absl::Seconds(1));
  REQUIRE(next.ok());
  CHECK((*next)->id == 1);
}

TEST_CASE("Lease::Destroy destroys instead of returning") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto lease = pool->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  lease->Destroy();
  CHECK(f.live == 0);
  CHECK(pool->Stats().total == 0);
  CHECK(pool->Stats().in_use == 0);
}

TEST_CASE("A factory failure reaches the acquirer and frees the slot") {
  std::atomic<int> live{0};
  std::atomic<bool> fail{true};
  auto pool = ModelPool<Counted>::Create(
      {.max_instances = 1, .factory = [&]() -> absl::StatusOr<std::unique_ptr<Counted>> {
         if (fail) return absl::NotFoundError("model.safetensors not in /nowhere");
         return std::make_unique<Counted>(0, &live);
       }});
  REQUIRE(pool.ok());
  auto first = (*pool)->Acquire(absl::Seconds(1));
  REQUIRE_FALSE(first.ok());
  CHECK(first.status().code() == absl::StatusCode::kNotFound);
  CHECK(first.status().message() == "model.safetensors not in /nowhere");
  CHECK((*pool)->Stats().total == 0);
  CHECK((*pool)->Stats().failed_creations == 1);
  fail = false;
  CHECK((*pool)->Acquire(absl::Seconds(1)).ok());
}

TEST_CASE("A factory that throws becomes an Internal error with its message") {
  auto pool = ModelPool<Counted>::Create(
      {.max_instances = 1, .factory = []() -> absl::StatusOr<std::unique_ptr<Counted>> {
         throw std::runtime_error("CUDA out of memory");
       }});
  REQUIRE(pool.ok());
  auto lease = (*pool)->Acquire(absl::Seconds(1));
  REQUIRE_FALSE(lease.ok());
  CHECK(lease.status().code() == absl::StatusCode::kInternal);
  CHECK(std::string(lease.status().message()).find("CUDA out of memory") != std::string::npos);
  CHECK((*pool)->Stats().total == 0);
}

TEST_CASE("A failed creation passes the slot on to the next waiter") {
  std::atomic<int> live{0};
  std::atomic<int> calls{0};
  std::promise<void> release_factory;
  std::shared_future<void> go = release_factory.get_future().share();
  auto pool = ModelPool<Counted>::Create(
      {.max_instances = 1, .factory = [&]() -> absl::StatusOr<std::unique_ptr<Counted>> {
         if (calls++ == 0) {
           go.wait();
           return absl::UnavailableError("first load fails");
         }
         return std::make_unique<Counted>(1, &live);
       }});
  REQUIRE(pool.ok());
  auto first =
      std::async(std::launch::async, [&] { return (*pool)->Acquire(absl::Seconds(10)).status(); });
  REQUIRE(Eventually([&] { return calls.load() == 1; }));
  auto second =
      std::async(std::launch::async, [&] { return (*pool)->Acquire(absl::Seconds(10)).ok(); });
  REQUIRE(Eventually([&] { return (*pool)->Stats().waiting == 1; }));
  release_factory.set_value();
  CHECK(first.get().code() == absl::StatusCode::kUnavailable);
  CHECK(second.get());
}

TEST_CASE("Shutdown cancels waiters and later acquires") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  auto waiter = std::async(std::launch::async,
                           [&] { return pool->Acquire(absl::Seconds(30)).status().code(); });
  REQUIRE(Eventually([&] { return pool->Stats().waiting == 1; }));
  const absl::Time start = absl::Now();
  pool->Shutdown();
  CHECK(waiter.get() == absl::StatusCode::kCancelled);
  CHECK(absl::Now() - start < absl::Seconds(5));
  CHECK(pool->Acquire(absl::Seconds(1)).status().code() == absl::StatusCode::kCancelled);
  held->Release();  // returned after shutdown: destroyed
  CHECK(f.live == 0);
}

TEST_CASE("A lease that outlives its pool ends safely and destroys its instance") {
  Fixture f;
  auto pool = f.MakePool(2);
  auto lease = pool->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  { auto idle = pool->Acquire(absl::Seconds(1)); }
  CHECK(f.live == 2);
  pool.reset();
  CHECK(f.live == 1);  // the idle one went with the pool
  CHECK((*lease)->id >= 0);
  lease->Release();
  CHECK(f.live == 0);
}

TEST_CASE("Waiters are served first come, first served") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  std::atomic<int> order{0};
  std::vector<std::future<int>> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.push_back(std::async(std::launch::async, [&] {
      auto lease = pool->Acquire(absl::Seconds(30));
      return lease.ok() ? order++ : -1;
    }));
    // Queue them one at a time, so their arrival order is known.
    REQUIRE(Eventually([&] { return pool->Stats().waiting == i + 1; }));
  }
  held->Release();
  for (int i = 0; i < 4; ++i) CHECK(waiters[i].get() == i);
}

TEST_CASE("A waiter that has waited the hand-off bound gets the next released instance first") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  std::promise<void> done;
  std::shared_future<void> done_future = done.get_future().share();
  auto waiter = std::async(std::launch::async, [&] {
    auto lease = pool->Acquire(absl::Seconds(30));
    done_future.wait();  // hold it until the newcomer has tried
    return lease.ok();
  });
  REQUIRE(Eventually([&] { return pool->Stats().waiting == 1; }));
  const absl::Time queued = absl::Now();
  REQUIRE(Eventually(
      [&] { return absl::Now() - queued > pool_internal::PoolState<Counted>::kHandOffAfter; }));
  held->Release();
  // Handed straight to the waiter, even if it has not woken yet: the newcomer finds none free.
  CHECK(pool->TryAcquire().status().code() == absl::StatusCode::kDeadlineExceeded);
  done.set_value();
  CHECK(waiter.get());
}

TEST_CASE("A waiter is not starved by a thread that keeps re-acquiring") {
  Fixture f;
  auto pool = f.MakePool(1);
  std::atomic<bool> stop{false};
  std::atomic<int> barger_cycles{0};
  std::thread barger([&] {
    while (!stop) {
      auto lease = pool->Acquire(absl::Seconds(5));
      if (lease.ok()) ++barger_cycles;
    }
  });
  REQUIRE(Eventually([&] { return barger_cycles.load() > 100; }));
  const absl::Time start = absl::Now();
  const bool got = pool->Acquire(absl::Seconds(5)).ok();
  const absl::Duration waited = absl::Now() - start;
  stop = true;
  barger.join();
  CHECK(got);
  CHECK(waited < absl::Seconds(1));
}

TEST_CASE("Shrinking destroys idle instances now and busy ones on release") {
  Fixture f;
  auto pool = f.MakePool(3);
  auto a = pool->Acquire(absl::Seconds(1));
  auto b = pool->Acquire(absl::Seconds(1));
  auto c = pool->Acquire(absl::Seconds(1));
  REQUIRE((a.ok() && b.ok() && c.ok()));
  c->Release();
  CHECK(f.live == 3);
  pool->Resize(1);
  CHECK(f.live == 2);  // the idle one
  CHECK(pool->Stats().max_instances == 1);
  a->Release();  // over the limit: destroyed
  CHECK(f.live == 1);
  b->Release();  // fits: kept
  CHECK(f.live == 1);
  CHECK(pool->Stats().available == 1);
}

TEST_CASE("Growing lets a waiter create an instance at once") {
  Fixture f;
  auto pool = f.MakePool(1);
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  auto waiter =
      std::async(std::launch::async, [&] { return pool->Acquire(absl::Seconds(30)).ok(); });
  REQUIRE(Eventually([&] { return pool->Stats().waiting == 1; }));
  pool->Resize(2);
  CHECK(waiter.get());
  CHECK(pool->Stats().created == 2);
}

TEST_CASE("DestroyIdle destroys idle instances and they are made again on demand") {
  Fixture f;
  auto pool = f.MakePool(2);
  {
    auto a = pool->Acquire(absl::Seconds(1));
    auto b = pool->Acquire(absl::Seconds(1));
  }
  CHECK(pool->DestroyIdle() == 2);
  CHECK(f.live == 0);
  CHECK(pool->Stats().total == 0);
  CHECK(pool->Acquire(absl::Seconds(1)).ok());
  CHECK(pool->Stats().created == 3);
}

TEST_CASE("Acquire-wait percentiles reflect waits") {
  Fixture f;
  auto pool = f.MakePool(1);
  { auto quick = pool->Acquire(absl::Seconds(1)); }
  CHECK(pool->Stats().acquire_wait_p99 < absl::Microseconds(1));
  auto held = pool->Acquire(absl::Seconds(1));
  REQUIRE(held.ok());
  (void)pool->Acquire(absl::Milliseconds(20));
  PoolStats s = pool->Stats();
  CHECK(s.acquire_wait_p50 < absl::Microseconds(1));
  CHECK(s.acquire_wait_p99 >= absl::Milliseconds(16));  // within a bucket of 20 ms
}

// The factory and destroyer check, from another thread, that the pool's lock is free while
// they run: Stats() takes it.
TEST_CASE("No instance is created or destroyed while the pool's lock is held") {
  std::atomic<int> live{0};
  ModelPool<Counted>* raw = nullptr;
  std::atomic<int> lock_free_checks{0};
  auto lock_is_free = [&] {
    auto probe = std::async(std::launch::async, [&] { return raw->Stats().total; });
    if (probe.wait_for(std::chrono::seconds(5)) == std::future_status::ready) ++lock_free_checks;
  };
  auto pool =
      ModelPool<Counted>::Create({.max_instances = 1,
                                  .factory = [&]() -> absl::StatusOr<std::unique_ptr<Counted>> {
                                    lock_is_free();
                                    return std::make_unique<Counted>(0, &live);
                                  },
                                  .destroyer =
                                      [&](std::unique_ptr<Counted> c) {
                                        lock_is_free();
                                        c.reset();
                                      }});
  REQUIRE(pool.ok());
  raw = pool->get();
  { auto lease = raw->Acquire(absl::Seconds(1), /*destroy_after_use=*/true); }
  CHECK(lock_free_checks == 2);
}

}  // namespace
}  // namespace modelpool
