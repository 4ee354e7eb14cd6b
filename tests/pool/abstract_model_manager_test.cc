#include "modelpool/pool/abstract_model_manager.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <vector>

#include "modelpool/devices/fake_device_inventory.h"

namespace modelpool {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// A model that occupies `bytes` of its fake GPU while it lives.
class FakeModel {
 public:
  FakeModel(Device device, int64_t bytes, std::shared_ptr<FakeDeviceInventory> inventory)
      : device_(device), bytes_(bytes), inventory_(std::move(inventory)) {
    if (device_.is_cuda()) Take(bytes_);
  }
  ~FakeModel() {
    if (device_.is_cuda()) Take(-bytes_);
  }
  const Device& device() const { return device_; }

 private:
  void Take(int64_t bytes) {
    inventory_->SetFreeBytes(device_.index, inventory_->Gpu(device_.index)->free_bytes - bytes);
  }
  Device device_;
  int64_t bytes_;
  std::shared_ptr<FakeDeviceInventory> inventory_;
};

class FakeManager : public AbstractModelManager<FakeModel> {
 public:
  static absl::StatusOr<std::unique_ptr<FakeManager>> Create(
      Settings settings, std::shared_ptr<FakeDeviceInventory> inventory, int64_t estimate,
      int64_t real) {
    auto manager = std::unique_ptr<FakeManager>(
        new FakeManager(std::move(settings), std::move(inventory), estimate, real));
    MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
    return manager;
  }

  std::string model_name() const override { return "fake"; }
  std::string model_type() const override { return "test"; }

  std::atomic<int> loads{0};
  std::atomic<bool> fail_loads{false};

 protected:
  absl::StatusOr<std::unique_ptr<FakeModel>> LoadInstance(const Device& device) override {
    ++loads;
    if (fail_loads) return absl::ResourceExhaustedError("CUDA out of memory");
    return std::make_unique<FakeModel>(device, real_, fake_inventory_);
  }
  int64_t EstimateInstanceBytes() const override { return estimate_; }

 private:
  FakeManager(Settings settings, std::shared_ptr<FakeDeviceInventory> inventory, int64_t estimate,
              int64_t real)
      : AbstractModelManager(std::move(settings), inventory),
        fake_inventory_(std::move(inventory)),
        estimate_(estimate),
        real_(real) {}

  std::shared_ptr<FakeDeviceInventory> fake_inventory_;
  int64_t estimate_, real_;
};

Settings Cap(int max_instances) {
  Settings s;
  s.max_instances = max_instances;
  s.vram_safety_margin_bytes = kGiB;
  s.footprint_estimate_factor = 1.0;  // the figures below are the estimates themselves
  return s;
}

std::map<int, int> CountByDevice(const std::vector<Lease<FakeModel>>& leases) {
  std::map<int, int> count;
  for (const auto& lease : leases) ++count[lease->device().index];
  return count;
}

TEST_CASE("Manager spreads instances over two GPUs by their room") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 13 * kGiB);  // (13 - 1) / 2 = 6
  inventory->AddGpu("B", 80 * kGiB, 5 * kGiB);   // (5 - 1) / 2 = 2
  auto manager = FakeManager::Create(Cap(6), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  CHECK((*manager)->plan().ToString() == "cuda:0 x4, cuda:1 x2");

  std::vector<Lease<FakeModel>> leases;
  for (int i = 0; i < 6; ++i) {
    auto lease = (*manager)->Acquire(absl::Seconds(1));
    REQUIRE(lease.ok());
    leases.push_back(*std::move(lease));
  }
  CHECK(CountByDevice(leases) == std::map<int, int>{{0, 4}, {1, 2}});
  CHECK((*manager)->Acquire(absl::Milliseconds(1)).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("AcquireOn leases only instances on that device") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 13 * kGiB);
  inventory->AddGpu("B", 80 * kGiB, 13 * kGiB);
  auto manager = FakeManager::Create(Cap(4), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  std::vector<Lease<FakeModel>> leases;
  for (int i = 0; i < 2; ++i) {
    auto lease = (*manager)->AcquireOn(Device::Cuda(1), absl::Seconds(1));
    REQUIRE(lease.ok());
    CHECK((*lease)->device() == Device::Cuda(1));
    leases.push_back(*std::move(lease));
  }
  CHECK((*manager)->AcquireOn(Device::Cuda(1), absl::Milliseconds(1)).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
  CHECK((*manager)->Stats(Device::Cuda(1)).in_use == 2);
  CHECK((*manager)->Stats(Device::Cuda(0)).in_use == 0);
  CHECK((*manager)->AcquireOn(Device::Cuda(5), absl::Seconds(1)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto elsewhere = (*manager)->Acquire(absl::Seconds(1));
  REQUIRE(elsewhere.ok());
  CHECK((*elsewhere)->device() == Device::Cuda(0));
}

TEST_CASE("Manager measures the first GPU load and resizes the pool with it") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 11 * kGiB);
  // Estimated 1 GiB: 10 fit. Really 3 GiB: after one load 7 GiB free, room for 2 more.
  auto manager = FakeManager::Create(Cap(100), inventory, kGiB, 3 * kGiB);
  REQUIRE(manager.ok());
  CHECK((*manager)->Stats().max_instances == 10);
  CHECK_FALSE((*manager)->instance_bytes_measured());

  auto first = (*manager)->Acquire(absl::Seconds(1));
  REQUIRE(first.ok());
  CHECK((*manager)->instance_bytes_measured());
  CHECK((*manager)->instance_bytes() == 3 * kGiB);
  CHECK((*manager)->Stats().max_instances == 3);
}

TEST_CASE("RecomputePoolSize follows memory that other models took") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 9 * kGiB);
  auto manager = FakeManager::Create(Cap(100), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  CHECK((*manager)->Stats().max_instances == 4);
  inventory->SetFreeBytes(0, 5 * kGiB);
  REQUIRE((*manager)->RecomputePoolSize().ok());
  CHECK((*manager)->Stats().max_instances == 2);
  inventory->SetFreeBytes(0, kGiB);
  CHECK((*manager)->RecomputePoolSize().code() == absl::StatusCode::kResourceExhausted);
  CHECK((*manager)->Stats().max_instances == 2);  // left as it was
}

TEST_CASE("Manager with too little VRAM fails with ResourceExhausted") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 16 * kGiB, 2 * kGiB);
  auto manager = FakeManager::Create(Cap(4), inventory, 4 * kGiB, 4 * kGiB);
  REQUIRE_FALSE(manager.ok());
  CHECK(manager.status().code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("Manager without GPUs runs on the CPU with the settings cap; force_gpu refuses") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  auto manager = FakeManager::Create(Cap(3), inventory, kGiB, kGiB);
  REQUIRE(manager.ok());
  CHECK((*manager)->devices() == std::vector<Device>{Device::Cpu()});
  CHECK((*manager)->Stats().max_instances == 3);
  auto lease = (*manager)->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  CHECK_FALSE((*lease)->device().is_cuda());

  Settings force_gpu = Cap(3);
  force_gpu.force_gpu = true;
  CHECK(FakeManager::Create(force_gpu, inventory, kGiB, kGiB).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("A failed load reaches the caller and frees the device's place") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 4 * kGiB);  // room for one of 2 GiB + 1 GiB margin
  auto manager = FakeManager::Create(Cap(4), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  (*manager)->fail_loads = true;
  auto failed = (*manager)->Acquire(absl::Seconds(1));
  CHECK(failed.status().code() == absl::StatusCode::kResourceExhausted);
  (*manager)->fail_loads = false;
  auto lease = (*manager)->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  CHECK((*lease)->device() == Device::Cuda(0));
}

TEST_CASE("destroy_after_use unloads the instance and its device takes a new one") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 4 * kGiB);
  auto manager = FakeManager::Create(Cap(4), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  {
    auto lease = (*manager)->Acquire(absl::Seconds(1), /*destroy_after_use=*/true);
    REQUIRE(lease.ok());
    CHECK(inventory->Gpu(0)->free_bytes == 2 * kGiB);
  }
  CHECK(inventory->Gpu(0)->free_bytes == 4 * kGiB);
  CHECK((*manager)->Acquire(absl::Seconds(1)).ok());
  CHECK((*manager)->loads == 2);
}

TEST_CASE("A lease may outlive its manager") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 8 * kGiB);
  auto manager = FakeManager::Create(Cap(2), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(manager.ok());
  auto lease = (*manager)->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  manager->reset();
  CHECK((*lease)->device() == Device::Cuda(0));
  lease->Release();
  CHECK(inventory->Gpu(0)->free_bytes == 8 * kGiB);
}

TEST_CASE("Two managers take their memory from one budget, evicting only idle instances") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("A", 80 * kGiB, 5 * kGiB);  // room for two instances of 2 GiB
  auto a = FakeManager::Create(Cap(4), inventory, 2 * kGiB, 2 * kGiB);
  auto b = FakeManager::Create(Cap(4), inventory, 2 * kGiB, 2 * kGiB);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->memory_governor() == (*b)->memory_governor());
  std::vector<Lease<FakeModel>> held;
  for (int i = 0; i < 2; ++i) {
    auto lease = (*a)->Acquire(absl::Seconds(1));
    REQUIRE(lease.ok());
    held.push_back(*std::move(lease));
  }
  // Both planned into the same room; the second to load finds it taken, and leased.
  auto refused = (*b)->Acquire(absl::Seconds(1));
  REQUIRE(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("fake x2"));
  CHECK(inventory->Gpu(0)->free_bytes == kGiB);
  held.clear();  // idle now: b may evict one
  auto lease = (*b)->Acquire(absl::Seconds(1));
  REQUIRE(lease.ok());
  CHECK((*a)->Stats().total == 1);
  CHECK(inventory->Gpu(0)->free_bytes == kGiB);
}

TEST_CASE("Acquire on a manager that failed to initialize is FailedPrecondition, not a crash") {
  // Initialize() is the subclass's job; a subclass that forgets it gets a clear error.
  struct Uninitialized : AbstractModelManager<FakeModel> {
    Uninitialized() : AbstractModelManager(Settings{}, std::make_shared<FakeDeviceInventory>()) {}
    std::string model_name() const override { return "u"; }
    std::string model_type() const override { return "test"; }
    absl::StatusOr<std::unique_ptr<FakeModel>> LoadInstance(const Device&) override {
      return absl::UnimplementedError("unused");
    }
    int64_t EstimateInstanceBytes() const override { return 1; }
  } manager;
  CHECK(manager.Acquire(absl::Seconds(1)).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace modelpool
