#ifndef MODELPOOL_TESTS_WORKERS_FAULT_WORLD_H_
#define MODELPOOL_TESTS_WORKERS_FAULT_WORLD_H_

// A worker pool over fake GPUs and a fake model, for the tests of how it meets faults.

#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <utility>

#include "modelpool/workers/generic_worker_pool.h"
#include "tests/workers/fake_model.h"

namespace modelpool::testing {

using Result = std::future<absl::StatusOr<int>>;

// A pool of one worker per fake GPU, with `faults` and `failures`, on `clock` (null: the real
// one).
struct World {
  World(int gpus, FailureSettings failures, std::shared_ptr<FaultInjector> faults = nullptr,
        Clock* clock = nullptr, HealthProbe<FakeModel> probe = nullptr) {
    FakeModelManager::Options options;
    options.gpus = gpus;
    inventory = FakeModelManager::Inventory(gpus);
    manager = FakeModelManager::Create(options, inventory);
    REQUIRE(manager != nullptr);
    WorkerSettings workers;
    workers.workers_per_device = 1;
    workers.failures = failures;
    auto created = GenericWorkerPool::Create({.settings = Settings{},
                                              .workers = workers,
                                              .inventory = inventory,
                                              .clock = clock,
                                              .shutdown_drain_timeout = absl::Seconds(5),
                                              .faults = std::move(faults)});
    REQUIRE(created.ok());
    pool = *std::move(created);
    REQUIRE(pool->RegisterModel<FakeModel>("fake", manager, {}, std::move(probe)).ok());
  }
  // A gate left shut would keep its call, and so a thread, waiting.
  ~World() {
    if (!opened) gate.set_value();
  }

  Result Submit(FakeRequest request, SubmitOptions options = {}) {
    return pool->SubmitTask<FakeModel, int>(
        "fake", [request](FakeModel& m) { return m.Run(request); }, options);
  }
  // A request that runs until `Open()`.
  Result SubmitGate(SubmitOptions options = {}) {
    return pool->SubmitTask<FakeModel, int>(
        "fake",
        [open = opens](FakeModel&) -> absl::StatusOr<int> {
          open.wait();
          return 7;
        },
        options);
  }
  void Open() {
    opened = true;
    gate.set_value();
  }
  ModelStats Model() const { return pool->Stats().models.at(0); }

  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<FakeModelManager> manager;
  std::unique_ptr<GenericWorkerPool> pool;
  std::promise<void> gate;
  std::shared_future<void> opens = gate.get_future().share();
  bool opened = false;
};

inline bool Ready(Result& r) {
  return r.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

inline absl::StatusOr<int> Get(Result& result) {
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return absl::DeadlineExceededError("the test waited 30 s for a result");
  }
  return result.get();
}

inline FailureSettings NoBreakers() {
  FailureSettings s;
  s.breaker_failures = 0;
  s.breaker_error_rate = 0;
  return s;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_WORKERS_FAULT_WORLD_H_
