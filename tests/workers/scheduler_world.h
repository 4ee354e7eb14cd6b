#ifndef MODELPOOL_TESTS_WORKERS_SCHEDULER_WORLD_H_
#define MODELPOOL_TESTS_WORKERS_SCHEDULER_WORLD_H_

#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "modelpool/base/fake_clock.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_memory_model.h"

namespace modelpool::testing {

constexpr int64_t kGiB = int64_t{1} << 30;

// SchedulerWorld
//
// A worker pool on fake GPUs of `gpu_bytes` each whose whole memory is the budget (or
// `budget_cap`), with a fake clock, and fake models registered by name. Declared in the order that
// destroys the pool first, then the managers, the governor and the clock.
struct SchedulerWorld {
  SchedulerWorld(int gpus, int64_t gpu_bytes, WorkerSettings workers,
                 absl::Duration load_timeout = absl::Minutes(10), double estimate_factor = 1.0,
                 int64_t budget_cap = 0) {
    settings.memory_threshold = 1.0;
    settings.gpu_memory_budget_bytes = budget_cap;
    settings.vram_safety_margin_bytes = 0;
    settings.footprint_estimate_factor = estimate_factor;
    settings.max_instances = 8;
    this->gpus = std::make_shared<FakeGpus>(gpus, gpu_bytes);
    auto made = MemoryGovernor::Create(
        {.settings = settings, .inventory = this->gpus->inventory, .clock = &clock});
    REQUIRE(made.ok());
    governor = *made;
    this->gpus->budget = governor->BudgetBytes(Device::Cuda(0));
    auto created = GenericWorkerPool::Create({.settings = settings,
                                              .workers = workers,
                                              .inventory = this->gpus->inventory,
                                              .governor = governor,
                                              .clock = &clock,
                                              .load_timeout = load_timeout,
                                              .shutdown_drain_timeout = absl::Seconds(5)});
    REQUIRE(created.ok());
    pool = *std::move(created);
  }
  // A gate left shut would keep its request, and so the pool's shutdown, waiting.
  ~SchedulerWorld() {
    if (!opened) gate.set_value();
  }

  std::shared_ptr<FakeMemoryManager> Add(FakeSpec spec, const ModelOptions& options = {}) {
    const std::string name = spec.name;
    auto manager = FakeMemoryManager::Create(
        std::move(spec), gpus, governor, [this](absl::Duration d) { clock.Advance(d); }, settings);
    REQUIRE(manager != nullptr);
    REQUIRE(pool->RegisterModel<FakeMemoryModel>(name, manager, options).ok());
    managers[name] = manager;
    return manager;
  }

  JobHandle<int64_t> Submit(const std::string& model, int64_t tokens = 1,
                            const SubmitOptions& options = {}) {
    return pool->SubmitJob<FakeMemoryModel, int64_t>(
        model, [tokens](FakeMemoryModel& m) { return m.Run(tokens); }, options);
  }

  // A request that runs until `Open()`, counted as running on its instance.
  JobHandle<int64_t> SubmitGate(const std::string& model, const SubmitOptions& options = {}) {
    std::shared_future<void> open = opens;
    return pool->SubmitJob<FakeMemoryModel, int64_t>(
        model,
        [open](FakeMemoryModel& m) -> absl::StatusOr<int64_t> {
          ++m.running;
          open.wait();
          --m.running;
          return 0;
        },
        options);
  }
  void Open() {
    opened = true;
    gate.set_value();
  }

  // Instances of `model` loaded per device index.
  std::map<int, int> LoadedOn(const std::string& model) const {
    std::map<int, int> loaded;
    for (const ModelStats& m : pool->Stats().models) {
      if (m.model_id != model) continue;
      for (const auto& p : m.loaded) loaded[p.device.index] = p.instances;
    }
    return loaded;
  }
  ModelStats StatsOf(const std::string& model) const {
    for (const ModelStats& m : pool->Stats().models) {
      if (m.model_id == model) return m;
    }
    return {};
  }
  bool WaitingOnTime() const {
    return Eventually([&] { return pool->Stats().waiting_on_time; });
  }

  Settings settings;
  FakeClock clock;
  std::shared_ptr<FakeGpus> gpus;
  std::shared_ptr<MemoryGovernor> governor;
  std::map<std::string, std::shared_ptr<FakeMemoryManager>> managers;
  std::promise<void> gate;
  std::shared_future<void> opens = gate.get_future().share();
  bool opened = false;
  std::unique_ptr<GenericWorkerPool> pool;
};

inline WorkerSettings Workers(int per_device, const std::string& policy = "modelpool") {
  WorkerSettings w;
  w.workers_per_device = per_device;
  w.policy = policy;
  w.keep_alive_gpu = absl::InfiniteDuration();
  w.keep_alive_cpu = absl::InfiniteDuration();
  return w;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_WORKERS_SCHEDULER_WORLD_H_
