// How fast is acquire + release, alone and under contention, against a pool written the
// obvious way (std::mutex, std::condition_variable, std::queue)? Prints Google Benchmark's
// table, then the ratio of ModelPool's throughput to the baseline's for each case.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>

#include "fmt/format.h"
#include "modelpool/pool/model_pool.h"

namespace modelpool {
namespace {

struct Instance {
  int64_t uses = 0;
};

// The obvious pool: waiters wake in whatever order the condition variable picks.
class BaselinePool {
 public:
  explicit BaselinePool(int max_instances) : max_instances_(max_instances) {}

  std::unique_ptr<Instance> Acquire(std::chrono::nanoseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (idle_.empty() && total_ < max_instances_) {
      ++total_;
      return std::make_unique<Instance>();
    }
    if (!cv_.wait_for(lock, timeout, [&] { return !idle_.empty(); })) return nullptr;
    std::unique_ptr<Instance> instance = std::move(idle_.front());
    idle_.pop();
    return instance;
  }

  void Release(std::unique_ptr<Instance> instance) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push(std::move(instance));
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::queue<std::unique_ptr<Instance>> idle_;
  int total_ = 0;
  const int max_instances_;
};

// One pool per size, shared by the threads of a benchmark.
ModelPool<Instance>& SharedModelPool(int instances) {
  static auto* pools = new std::map<int, std::unique_ptr<ModelPool<Instance>>>;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto& pool = (*pools)[instances];
  if (!pool) {
    pool = *ModelPool<Instance>::Create(
        {.max_instances = instances, .factory = []() -> absl::StatusOr<std::unique_ptr<Instance>> {
           return std::make_unique<Instance>();
         }});
  }
  return *pool;
}

BaselinePool& SharedBaselinePool(int instances) {
  static auto* pools = new std::map<int, std::unique_ptr<BaselinePool>>;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto& pool = (*pools)[instances];
  if (!pool) pool = std::make_unique<BaselinePool>(instances);
  return *pool;
}

void BM_ModelPool(benchmark::State& state) {
  ModelPool<Instance>& pool = SharedModelPool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<Lease<Instance>> lease = pool.Acquire(absl::Seconds(10));
    if (!lease.ok()) {
      state.SkipWithError("acquire failed");
      break;
    }
    ++(*lease)->uses;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Baseline(benchmark::State& state) {
  BaselinePool& pool = SharedBaselinePool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::unique_ptr<Instance> instance = pool.Acquire(std::chrono::seconds(10));
    if (!instance) {
      state.SkipWithError("acquire failed");
      break;
    }
    ++instance->uses;
    pool.Release(std::move(instance));
  }
  state.SetItemsProcessed(state.iterations());
}

// Arg: instances. Threads: contending acquirers.
BENCHMARK(BM_ModelPool)->Arg(1)->Threads(1)->UseRealTime();
BENCHMARK(BM_Baseline)->Arg(1)->Threads(1)->UseRealTime();
BENCHMARK(BM_ModelPool)->Args({1})->Args({4})->Threads(4)->Threads(16)->UseRealTime();
BENCHMARK(BM_Baseline)->Args({1})->Args({4})->Threads(4)->Threads(16)->UseRealTime();

// Collects each run's throughput so main() can print ModelPool / baseline.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second;
    }
  }
  void PrintRatios() const {
    fmt::print("\n{:<40} {:>14} {:>14} {:>8}\n", "case", "modelpool/s", "baseline/s", "ratio");
    for (const auto& [name, rate] : rates_) {
      if (name.rfind("BM_ModelPool", 0) != 0) continue;
      const std::string peer = "BM_Baseline" + name.substr(std::string("BM_ModelPool").size());
      auto it = rates_.find(peer);
      if (it == rates_.end()) continue;
      fmt::print("{:<40} {:>14.0f} {:>14.0f} {:>8.2f}\n", name.substr(3), rate, it->second,
                 rate / it->second);
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  modelpool::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
