#ifndef MODELPOOL_TESTS_TESTING_FAKE_MEMORY_MODEL_H_
#define MODELPOOL_TESTS_TESTING_FAKE_MEMORY_MODEL_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/fake_device_inventory.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool::testing {

// FakeGpus
//
// Fake GPUs whose free memory the fake models below take while they live, with the checks the
// scheduler tests make at every load: the memory taken never exceeds a device's budget, and no
// instance is destroyed while a request runs on it.
class FakeGpus {
 public:
  FakeGpus(int gpus, int64_t total_bytes) : FakeGpus(std::vector<int64_t>(gpus, total_bytes)) {}
  explicit FakeGpus(const std::vector<int64_t>& totals)
      : inventory(std::make_shared<FakeDeviceInventory>()), totals(totals), peaks(totals.size()) {
    for (int64_t total : totals) inventory->AddGpu("fake", total, total);
  }

  // Takes `bytes` of GPU `index`; counts a violation if what the models hold then exceeds
  // `budget` (set by the test from the governor's), or the GPU's memory when it is not set.
  void Take(int index, int64_t bytes) {
    inventory->ChangeFreeBytes(index, -bytes);
    const int64_t used = Used(index);
    int64_t peak = peaks[index].load();
    while (used > peak && !peaks[index].compare_exchange_weak(peak, used)) {
    }
    const int64_t limit = budget > 0 ? budget.load() : totals[index];
    if (used > limit) ++over_budget;
  }
  void Give(int index, int64_t bytes) { inventory->ChangeFreeBytes(index, bytes); }
  int64_t Used(int index) const { return totals[index] - inventory->Gpu(index)->free_bytes; }

  std::shared_ptr<FakeDeviceInventory> inventory;
  const std::vector<int64_t> totals;
  std::vector<std::atomic<int64_t>> peaks;  // the most the models held at once, per GPU
  std::atomic<int64_t> budget{0};
  std::atomic<int> over_budget{0};
  std::atomic<int> destroyed_while_running{0};
  std::atomic<int> instances{0};
};

// How fake work spends its time: advancing a fake clock (time moves with the work), sleeping
// (the scheduler simulator), or not at all (null).
using Spend = std::function<void(absl::Duration)>;

// What a fake model is: its memory (weights shared by the instances on a device, a workspace
// each), how long a load takes and what a token costs.
struct FakeSpec {
  std::string name;
  int64_t shared_bytes = 0;
  int64_t instance_bytes = 1 << 20;
  absl::Duration load_time;
  absl::Duration per_token;
  // The model's own estimate is the truth times this.
  double estimate_share = 1.0;
  // Loads fail with this error when it is not OK.
  absl::Status load_error;
};

// What the instances of one model hold on each device: the first takes the shared bytes too,
// the last one to go gives them back, as instances that share their weights do. Shared by the
// manager and its instances, which may outlive it.
class SharedWeights {
 public:
  SharedWeights(int64_t shared_bytes, int64_t instance_bytes)
      : shared_bytes_(shared_bytes), instance_bytes_(instance_bytes) {}
  int64_t Take(int index) {
    MutexLock lock(&mu_);
    return (live_[index]++ == 0 ? shared_bytes_ : 0) + instance_bytes_;
  }
  int64_t Give(int index) {
    MutexLock lock(&mu_);
    return (--live_[index] == 0 ? shared_bytes_ : 0) + instance_bytes_;
  }

 private:
  const int64_t shared_bytes_, instance_bytes_;
  Mutex mu_;
  std::map<int, int> live_ ABSL_GUARDED_BY(mu_);
};

// One loaded instance; it holds its memory on its fake GPU while it lives.
class FakeMemoryModel {
 public:
  FakeMemoryModel(std::shared_ptr<SharedWeights> weights, std::shared_ptr<FakeGpus> gpus,
                  Device device, const FakeSpec& spec, Spend spend)
      : weights_(std::move(weights)),
        gpus_(std::move(gpus)),
        device_(device),
        spec_(spec),
        spend_(std::move(spend)) {
    ++gpus_->instances;
    if (device_.is_cuda()) gpus_->Take(device_.index, weights_->Take(device_.index));
  }
  ~FakeMemoryModel() {
    if (running.load() != 0) ++gpus_->destroyed_while_running;
    --gpus_->instances;
    if (device_.is_cuda()) gpus_->Give(device_.index, weights_->Give(device_.index));
  }

  // Runs a request of `tokens`; returns `tokens`.
  absl::StatusOr<int64_t> Run(int64_t tokens) {
    ++running;
    if (spend_) spend_(spec_.per_token * tokens);
    --running;
    ++runs;
    return tokens;
  }

  const Device& device() const { return device_; }
  const std::string& model() const { return spec_.name; }
  std::atomic<int> running{0};
  std::atomic<int> runs{0};

 private:
  const std::shared_ptr<SharedWeights> weights_;
  const std::shared_ptr<FakeGpus> gpus_;
  const Device device_;
  const FakeSpec spec_;
  const Spend spend_;
};

// Manages `FakeMemoryModel`s, estimating their footprint as `FakeSpec::estimate_share` says.
class FakeMemoryManager : public AbstractModelManager<FakeMemoryModel> {
 public:
  static std::shared_ptr<FakeMemoryManager> Create(FakeSpec spec, std::shared_ptr<FakeGpus> gpus,
                                                   std::shared_ptr<MemoryGovernor> governor,
                                                   Spend spend, Settings settings = {}) {
    auto manager = std::shared_ptr<FakeMemoryManager>(
        new FakeMemoryManager(std::move(spec), std::move(gpus), std::move(governor),
                              std::move(spend), std::move(settings)));
    if (!manager->Initialize().ok()) return nullptr;
    return manager;
  }

  std::string model_name() const override { return spec_.name; }
  std::string model_type() const override { return "test"; }
  std::atomic<int> loads{0};

 protected:
  absl::StatusOr<std::unique_ptr<FakeMemoryModel>> LoadInstance(const Device& device) override {
    ++loads;
    if (spend_) spend_(spec_.load_time);
    if (!spec_.load_error.ok()) return spec_.load_error;
    return std::make_unique<FakeMemoryModel>(weights_, gpus_, device, spec_, spend_);
  }
  int64_t EstimateInstanceBytes() const override {
    return Share(spec_.shared_bytes + spec_.instance_bytes);
  }
  MemoryFootprint EstimateFootprint(const Device&) const override {
    return {Share(spec_.shared_bytes), Share(spec_.instance_bytes)};
  }

 private:
  FakeMemoryManager(FakeSpec spec, std::shared_ptr<FakeGpus> gpus,
                    std::shared_ptr<MemoryGovernor> governor, Spend spend, Settings settings)
      : AbstractModelManager(std::move(settings), gpus->inventory, std::move(governor)),
        spec_(std::move(spec)),
        gpus_(std::move(gpus)),
        spend_(std::move(spend)),
        weights_(std::make_shared<SharedWeights>(spec_.shared_bytes, spec_.instance_bytes)) {}
  int64_t Share(int64_t bytes) const {
    return static_cast<int64_t>(static_cast<double>(bytes) * spec_.estimate_share);
  }

  const FakeSpec spec_;
  const std::shared_ptr<FakeGpus> gpus_;
  const Spend spend_;
  const std::shared_ptr<SharedWeights> weights_;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_FAKE_MEMORY_MODEL_H_
