// How long from Submit() to the start of the request on a worker? A no-op model on the CPU:
// one request at a time (an idle worker wakes), then bursts of 64 (workers are busy).
// Targets on the CI machine: p50 <= 20 us, p99 <= 200 us.
#include <algorithm>
#include <cstdio>
#include <future>
#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "examples/common/command_line.h"
#include "fmt/format.h"
#include "modelpool/devices/fake_device_inventory.h"
#include "modelpool/workers/generic_worker_pool.h"

namespace modelpool {
namespace {

struct NoOp {};

class NoOpManager : public AbstractModelManager<NoOp> {
 public:
  static std::shared_ptr<NoOpManager> Create(const Settings& settings,
                                             std::shared_ptr<DeviceInventory> inventory) {
    auto manager = std::shared_ptr<NoOpManager>(new NoOpManager(settings, std::move(inventory)));
    if (!manager->Initialize().ok()) return nullptr;
    return manager;
  }
  std::string model_name() const override { return "no-op"; }
  std::string model_type() const override { return "benchmark"; }

 protected:
  absl::StatusOr<std::unique_ptr<NoOp>> LoadInstance(const Device&) override {
    return std::make_unique<NoOp>();
  }
  int64_t EstimateInstanceBytes() const override { return 1; }

 private:
  NoOpManager(const Settings& settings, std::shared_ptr<DeviceInventory> inventory)
      : AbstractModelManager(settings, std::move(inventory)) {}
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// Submits `burst` requests at once, `rounds` times; returns each one's submit-to-start time.
std::vector<double> Measure(GenericWorkerPool& pool, int rounds, int burst) {
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(rounds * burst));
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::future<absl::StatusOr<double>>> started;
    for (int i = 0; i < burst; ++i) {
      const absl::Time submitted = absl::Now();
      started.push_back(pool.SubmitTask<NoOp, double>("no-op", [submitted](NoOp&) {
        return absl::StatusOr<double>(absl::ToDoubleMicroseconds(absl::Now() - submitted));
      }));
    }
    for (auto& f : started) micros.push_back(*f.get());
  }
  return micros;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) {
  using namespace modelpool;
  cli::ParseCommandLine(argc, argv, "dispatch_bench (no flags)");
  Settings settings;
  settings.force_cpu = true;
  settings.max_instances = 2;
  WorkerSettings workers;
  workers.workers_per_device = 2;
  auto inventory = std::make_shared<FakeDeviceInventory>();
  auto manager = NoOpManager::Create(settings, inventory);
  auto pool =
      GenericWorkerPool::Create({.settings = settings, .workers = workers, .inventory = inventory});
  if (manager == nullptr || !pool.ok() || !(*pool)->RegisterModel<NoOp>("no-op", manager).ok() ||
      !(*pool)->PreloadModel("no-op", 2).ok()) {
    std::fprintf(stderr, "cannot set up the worker pool\n");
    return 1;
  }
  Measure(**pool, 200, 1);  // warm up
  fmt::print("{:<28} {:>8} {:>10} {:>10}   target p50 <= 20 us, p99 <= 200 us\n", "case",
             "requests", "p50 us", "p99 us");
  for (const auto& [name, rounds, burst] :
       {std::tuple{"one at a time (idle)", 20000, 1}, std::tuple{"bursts of 64", 300, 64}}) {
    const std::vector<double> micros = Measure(**pool, rounds, burst);
    fmt::print("{:<28} {:>8} {:>10.1f} {:>10.1f}\n", name, micros.size(), Percentile(micros, 0.50),
               Percentile(micros, 0.99));
  }
  return 0;
}
