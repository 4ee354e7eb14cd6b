#include "modelpool/pool/pool_sizing.h"

#include <catch2/catch.hpp>

#include "modelpool/devices/fake_device_inventory.h"

namespace modelpool {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

Settings GpuSettings(int max_instances, int64_t margin) {
  Settings s;
  s.max_instances = max_instances;
  s.vram_safety_margin_bytes = margin;
  return s;
}

TEST_CASE("SelectDevices uses every GPU, else the CPU with a reason") {
  FakeDeviceInventory none;
  std::string reason;
  auto cpu = SelectDevices(Settings{}, none, &reason);
  REQUIRE(cpu.ok());
  CHECK(*cpu == std::vector<Device>{Device::Cpu()});
  CHECK(reason == "no GPU is usable");

  FakeDeviceInventory two;
  two.AddGpu("A", 80 * kGiB, 70 * kGiB);
  two.AddGpu("B", 80 * kGiB, 70 * kGiB);
  auto gpus = SelectDevices(Settings{}, two);
  REQUIRE(gpus.ok());
  CHECK(*gpus == std::vector<Device>{Device::Cuda(0), Device::Cuda(1)});
}

TEST_CASE("SelectDevices honours force_cpu, force_gpu and the devices list") {
  FakeDeviceInventory none;
  Settings force_gpu;
  force_gpu.force_gpu = true;
  CHECK(SelectDevices(force_gpu, none).status().code() == absl::StatusCode::kFailedPrecondition);

  FakeDeviceInventory two;
  two.AddGpu("A", 80 * kGiB, 70 * kGiB);
  two.AddGpu("B", 80 * kGiB, 70 * kGiB);
  Settings force_cpu;
  force_cpu.force_cpu = true;
  CHECK(*SelectDevices(force_cpu, two) == std::vector<Device>{Device::Cpu()});

  Settings listed;
  listed.devices = {Device::Cuda(1)};
  CHECK(*SelectDevices(listed, two) == std::vector<Device>{Device::Cuda(1)});
  listed.devices = {Device::Cuda(2)};
  CHECK(SelectDevices(listed, two).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("PlanPool fits floor((free - margin) / size) per GPU, capped and spread") {
  FakeDeviceInventory inventory;
  inventory.AddGpu("big", 80 * kGiB, 21 * kGiB);   // (21 - 1) / 4 = 5
  inventory.AddGpu("small", 80 * kGiB, 9 * kGiB);  // (9 - 1) / 4 = 2
  const std::vector<Device> gpus = {Device::Cuda(0), Device::Cuda(1)};

  auto uncapped = PlanPool("m", GpuSettings(100, kGiB), inventory, gpus, 4 * kGiB);
  REQUIRE(uncapped.ok());
  CHECK(uncapped->QuotaOf(Device::Cuda(0)) == 5);
  CHECK(uncapped->QuotaOf(Device::Cuda(1)) == 2);
  CHECK(uncapped->total() == 7);

  auto capped = PlanPool("m", GpuSettings(4, kGiB), inventory, gpus, 4 * kGiB);
  REQUIRE(capped.ok());
  CHECK(capped->QuotaOf(Device::Cuda(0)) == 2);
  CHECK(capped->QuotaOf(Device::Cuda(1)) == 2);

  auto odd_cap = PlanPool("m", GpuSettings(5, kGiB), inventory, gpus, 4 * kGiB);
  REQUIRE(odd_cap.ok());
  CHECK(odd_cap->QuotaOf(Device::Cuda(0)) == 3);
  CHECK(odd_cap->QuotaOf(Device::Cuda(1)) == 2);
}

TEST_CASE("PlanPool counts instances a GPU already holds") {
  FakeDeviceInventory inventory;
  inventory.AddGpu("A", 80 * kGiB, 2 * kGiB);  // room for none more
  auto plan = PlanPool("m", GpuSettings(8, kGiB), inventory, {Device::Cuda(0)}, 4 * kGiB, {3});
  REQUIRE(plan.ok());
  CHECK(plan->total() == 3);
}

TEST_CASE("PlanPool with room for no instance is ResourceExhausted with the figures") {
  FakeDeviceInventory inventory;
  inventory.AddGpu("A", 16 * kGiB, 3 * kGiB);
  auto plan =
      PlanPool("bert-large", GpuSettings(4, 2 * kGiB), inventory, {Device::Cuda(0)}, 2 * kGiB);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == absl::StatusCode::kResourceExhausted);
  const std::string message(plan.status().message());
  CHECK(message.find("bert-large") != std::string::npos);
  CHECK(message.find("2.00 GiB") != std::string::npos);
  CHECK(message.find("cuda:0 has 3.00 GiB free") != std::string::npos);
}

TEST_CASE("PlanPool on the CPU takes the settings cap") {
  FakeDeviceInventory none;
  auto plan = PlanPool("m", GpuSettings(3, kGiB), none, {Device::Cpu()}, 100 * kGiB);
  REQUIRE(plan.ok());
  CHECK(plan->total() == 3);
  CHECK(plan->ToString() == "cpu x3");
}

}  // namespace
}  // namespace modelpool
