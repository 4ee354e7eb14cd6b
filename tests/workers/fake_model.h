#ifndef MODELPOOL_TESTS_WORKERS_FAKE_MODEL_H_
#define MODELPOOL_TESTS_WORKERS_FAKE_MODEL_H_

#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "modelpool/devices/fake_device_inventory.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool::testing {

// What a fake model does with a request.
struct FakeRequest {
  int value = 0;
  absl::Duration work;       // how long it "computes"
  bool fail = false;         // returns an error
  bool throw_error = false;  // throws
};

// A model instance that sleeps, fails on command and records where it ran.
class FakeModel {
 public:
  FakeModel(Device device, absl::Duration per_request)
      : device_(device), per_request_(per_request) {}

  absl::StatusOr<int> Run(const FakeRequest& request) {
    ++calls;
    last_thread = std::this_thread::get_id();
    const absl::Duration work = request.work + per_request_;
    if (work > absl::ZeroDuration()) absl::SleepFor(work);
    if (request.throw_error) throw std::runtime_error("fake model threw");
    if (request.fail) return absl::InternalError("fake model failed");
    return request.value * 2;
  }

  const Device& device() const { return device_; }
  std::atomic<int> calls{0};
  std::thread::id last_thread;

 private:
  Device device_;
  absl::Duration per_request_;
};

// Manages FakeModels on fake GPUs; instances on `slow_device` take `slow_work` per request,
// loads on `failing_device` fail.
class FakeModelManager : public AbstractModelManager<FakeModel> {
 public:
  struct Options {
    int gpus = 2;
    int max_instances = 8;
    Device slow_device = Device::Cuda(99);
    absl::Duration slow_work;
    Device failing_device = Device::Cuda(99);
  };

  static std::shared_ptr<FakeDeviceInventory> Inventory(int gpus) {
    auto inventory = std::make_shared<FakeDeviceInventory>();
    for (int i = 0; i < gpus; ++i) inventory->AddGpu("fake", int64_t{80} << 30, int64_t{80} << 30);
    return inventory;
  }

  static std::shared_ptr<FakeModelManager> Create(const Options& options,
                                                  std::shared_ptr<DeviceInventory> inventory) {
    Settings settings;
    settings.max_instances = options.max_instances;
    auto manager = std::shared_ptr<FakeModelManager>(
        new FakeModelManager(settings, std::move(inventory), options));
    if (!manager->Initialize().ok()) return nullptr;
    return manager;
  }

  std::string model_name() const override { return "fake"; }
  std::string model_type() const override { return "test"; }
  std::atomic<int> loads{0};

 protected:
  absl::StatusOr<std::unique_ptr<FakeModel>> LoadInstance(const Device& device) override {
    ++loads;
    if (device == options_.failing_device) return absl::UnavailableError("fake load failure");
    return std::make_unique<FakeModel>(
        device, device == options_.slow_device ? options_.slow_work : absl::ZeroDuration());
  }
  int64_t EstimateInstanceBytes() const override { return int64_t{1} << 30; }

 private:
  FakeModelManager(Settings settings, std::shared_ptr<DeviceInventory> inventory, Options options)
      : AbstractModelManager(std::move(settings), std::move(inventory)), options_(options) {}
  Options options_;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_WORKERS_FAKE_MODEL_H_
