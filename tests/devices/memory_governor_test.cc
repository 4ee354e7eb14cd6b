#include "modelpool/devices/memory_governor.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <vector>

#include "modelpool/base/fake_clock.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/fake_device_inventory.h"
#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

Settings WholeGpu() {
  Settings s;
  s.memory_threshold = 1.0;
  s.vram_safety_margin_bytes = 0;
  s.footprint_estimate_factor = 1.0;
  return s;
}

// Instances that exist only as memory taken from a fake GPU; the test says which are idle.
class FakeOwner : public MemoryGovernor::Owner {
 public:
  explicit FakeOwner(std::shared_ptr<FakeDeviceInventory> inventory)
      : inventory_(std::move(inventory)) {}

  void Add(const Device& device, MemoryGovernor::InstanceMemory memory, int64_t bytes, bool idle) {
    MutexLock lock(&mu_);
    held_.push_back({device, std::move(memory), bytes, idle});
  }
  void SetIdle(bool idle) {
    MutexLock lock(&mu_);
    for (Instance& i : held_) i.idle = idle;
  }
  // Whether destroying an instance gives its memory back to the GPU.
  void set_leaks(bool leaks) {
    MutexLock lock(&mu_);
    leaks_ = leaks;
  }
  int destroyed() {
    MutexLock lock(&mu_);
    return destroyed_;
  }

  bool DestroyIdleInstance(const Device& device) override {
    MemoryGovernor::InstanceMemory memory;
    {
      MutexLock lock(&mu_);
      auto it = std::find_if(held_.begin(), held_.end(),
                             [&](const Instance& i) { return i.device == device && i.idle; });
      if (it == held_.end()) return false;
      if (!leaks_) inventory_->ChangeFreeBytes(device.index, it->bytes);
      memory = std::move(it->memory);
      held_.erase(it);
      ++destroyed_;
    }
    return true;  // `memory` is released here, after the instance is gone
  }
  int IdleInstances(const Device& device) override {
    MutexLock lock(&mu_);
    return static_cast<int>(std::count_if(held_.begin(), held_.end(), [&](const Instance& i) {
      return i.device == device && i.idle;
    }));
  }

 private:
  struct Instance {
    Device device;
    MemoryGovernor::InstanceMemory memory;
    int64_t bytes = 0;
    bool idle = false;
  };
  const std::shared_ptr<FakeDeviceInventory> inventory_;
  Mutex mu_;
  std::vector<Instance> held_ ABSL_GUARDED_BY(mu_);
  bool leaks_ ABSL_GUARDED_BY(mu_) = false;
  int destroyed_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Setup {
  explicit Setup(Settings settings = WholeGpu(), int gpus = 1, int64_t total = 10 * kGiB) {
    inventory = std::make_shared<FakeDeviceInventory>();
    for (int i = 0; i < gpus; ++i) inventory->AddGpu("fake", total, total);
    auto made = MemoryGovernor::Create(
        {.settings = std::move(settings), .inventory = inventory, .clock = &clock});
    REQUIRE(made.ok());
    governor = *made;
  }

  struct Model {
    std::shared_ptr<FakeOwner> owner;
    std::unique_ptr<MemoryGovernor::Account> account;
  };
  Model Open(const std::string& name, MemoryFootprint estimate, const std::string& variant = "") {
    Model m;
    m.owner = std::make_shared<FakeOwner>(inventory);
    m.account = governor->Register({.model = name,
                                    .variant = [variant](const Device&) { return variant; },
                                    .estimate = [estimate](const Device&) { return estimate; },
                                    .owner = m.owner});
    return m;
  }

  // Reserves, takes `actual` bytes of the GPU as a load would, and commits.
  absl::Status Load(Model& m, int64_t actual, bool idle = true, int gpu = 0) {
    absl::StatusOr<MemoryGovernor::Reservation> r =
        governor->Reserve(*m.account, Device::Cuda(gpu), Options());
    if (!r.ok()) return r.status();
    inventory->ChangeFreeBytes(gpu, -actual);
    m.owner->Add(Device::Cuda(gpu), r->Commit(), actual, idle);
    m.account->Touch(Device::Cuda(gpu));
    return absl::OkStatus();
  }
  static MemoryGovernor::ReserveOptions Options(absl::Duration wait = absl::Seconds(5)) {
    MemoryGovernor::ReserveOptions options;
    options.deadline = absl::Now() + wait;
    return options;
  }
  int64_t Used() const { return governor->Stats().at(0).used_bytes; }

  FakeClock clock;
  std::shared_ptr<FakeDeviceInventory> inventory;
  std::shared_ptr<MemoryGovernor> governor;
};

TEST_CASE("A GPU's budget is its fraction or its total less the margin, whichever is less") {
  Settings s;
  s.memory_threshold = 0.8;
  s.vram_safety_margin_bytes = kGiB;
  CHECK(Setup(s, 1, 80 * kGiB).governor->BudgetBytes(Device::Cuda(0)) == 64 * kGiB);
  s.memory_threshold = 1.0;
  s.vram_safety_margin_bytes = 2 * kGiB;
  CHECK(Setup(s, 1, 80 * kGiB).governor->BudgetBytes(Device::Cuda(0)) == 78 * kGiB);
  s.gpu_memory_budget_bytes = 20 * kGiB;
  CHECK(Setup(s, 1, 80 * kGiB).governor->BudgetBytes(Device::Cuda(0)) == 20 * kGiB);
  s.cpu_memory_budget_bytes = 4 * kGiB;
  CHECK(Setup(s).governor->BudgetBytes(Device::Cpu()) == 4 * kGiB);
  CHECK(Setup(s).governor->BudgetBytes(Device::Cuda(7)) == 0);
}

TEST_CASE("Shared bytes are charged once per device, and loads measure what they take") {
  Settings s = WholeGpu();
  s.footprint_estimate_factor = 1.5;
  Setup g(s);
  Setup::Model bert = g.Open("bert", {.shared_bytes = 2 * kGiB, .instance_bytes = kGiB});
  // Before any load: the estimate times the factor.
  CHECK(g.governor->NextInstanceBytes(*bert.account, Device::Cuda(0)) == 9 * kGiB / 2);
  CHECK_FALSE(g.governor->Measured(*bert.account));
  REQUIRE(g.Load(bert, 3 * kGiB).ok());
  CHECK(g.governor->Measured(*bert.account));
  // One measurement of a first instance splits as the estimate does.
  MemoryFootprint f = g.governor->FootprintOf(*bert.account, Device::Cuda(0));
  CHECK(f.shared_bytes == 2 * kGiB);
  CHECK(f.instance_bytes == kGiB);
  CHECK(g.Used() == 3 * kGiB);
  // A second instance costs its workspace only.
  CHECK(g.governor->NextInstanceBytes(*bert.account, Device::Cuda(0)) == kGiB);
  REQUIRE(g.Load(bert, kGiB / 2).ok());
  f = g.governor->FootprintOf(*bert.account, Device::Cuda(0));
  CHECK(f.instance_bytes == kGiB / 2);
  CHECK(f.shared_bytes == 5 * kGiB / 2);
  CHECK(g.Used() == 7 * kGiB / 2);
  CHECK(bert.account->Instances(Device::Cuda(0)) == 2);
  // The last instance to go takes the shared bytes with it.
  REQUIRE(bert.owner->DestroyIdleInstance(Device::Cuda(0)));
  REQUIRE(bert.owner->DestroyIdleInstance(Device::Cuda(0)));
  CHECK(g.Used() == 0);
  CHECK(g.inventory->Gpu(0)->free_bytes == 10 * kGiB);
}

TEST_CASE("A load that does not fit evicts the least recently used idle instance, not leased") {
  Setup g;
  Setup::Model a = g.Open("a", {.instance_bytes = 4 * kGiB});
  Setup::Model b = g.Open("b", {.instance_bytes = 4 * kGiB});
  Setup::Model c = g.Open("c", {.instance_bytes = 4 * kGiB});
  REQUIRE(g.Load(b, 4 * kGiB).ok());
  g.clock.Advance(absl::Minutes(1));
  REQUIRE(g.Load(a, 4 * kGiB).ok());
  g.clock.Advance(absl::Minutes(1));
  REQUIRE(g.Load(c, 4 * kGiB, /*idle=*/false).ok());  // b, least recently used, makes room
  CHECK(b.owner->destroyed() == 1);
  CHECK(a.owner->destroyed() == 0);
  CHECK(g.Used() == 8 * kGiB);
  a.owner->SetIdle(false);  // leased now
  Setup::Model d = g.Open("d", {.instance_bytes = 4 * kGiB});
  const absl::Status refused = g.Load(d, 4 * kGiB);
  REQUIRE(refused.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(refused.message()), Catch::Contains("a x1"));
  CHECK_THAT(std::string(refused.message()), Catch::Contains("c x1"));
  CHECK(a.owner->destroyed() == 0);
  CHECK(g.governor->Stats().at(0).evictions == 1);
  CHECK(b.account->Evictions() == 1);
}

TEST_CASE("Loads on one device run one at a time; other devices are not held up") {
  Setup g(WholeGpu(), /*gpus=*/2);
  Setup::Model a = g.Open("a", {.instance_bytes = kGiB});
  absl::StatusOr<MemoryGovernor::Reservation> first =
      g.governor->Reserve(*a.account, Device::Cuda(0), Setup::Options());
  REQUIRE(first.ok());
  CHECK(g.governor->Reserve(*a.account, Device::Cuda(0), Setup::Options(absl::Milliseconds(20)))
            .status()
            .code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(g.governor->Reserve(*a.account, Device::Cuda(1), Setup::Options()).ok());
  g.inventory->ChangeFreeBytes(0, -kGiB);
  MemoryGovernor::InstanceMemory memory = first->Commit();
  CHECK(memory.bytes() == kGiB);
  CHECK(g.governor->Reserve(*a.account, Device::Cuda(0), Setup::Options()).ok());
}

TEST_CASE("A model larger than the budget is refused, naming the budget") {
  Setup g(WholeGpu(), 1, 4 * kGiB);
  Setup::Model big = g.Open("big", {.shared_bytes = 4 * kGiB, .instance_bytes = kGiB});
  const absl::Status refused = g.Load(big, 5 * kGiB);
  REQUIRE(refused.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(refused.message()), Catch::Contains("whole budget of 4.00 GiB"));
}

TEST_CASE("Measured footprints are kept in the footprint file for the next start") {
  const std::string path = (testing::TempDir("footprints") / "footprints.json").string();
  Settings s = WholeGpu();
  s.footprint_file = path;
  {
    Setup g(s);
    Setup::Model t5 = g.Open("t5", {.shared_bytes = kGiB, .instance_bytes = kGiB}, "bfloat16");
    REQUIRE(g.Load(t5, 3 * kGiB).ok());
    REQUIRE(g.Load(t5, kGiB / 2).ok());
  }
  Setup next(s);
  Setup::Model t5 = next.Open("t5", {.shared_bytes = kGiB, .instance_bytes = kGiB}, "bfloat16");
  const MemoryFootprint f = next.governor->FootprintOf(*t5.account, Device::Cuda(0));
  CHECK(f.shared_bytes == 5 * kGiB / 2);
  CHECK(f.instance_bytes == kGiB / 2);
  CHECK(next.governor->Measured(*t5.account));
  // Another dtype was not measured.
  Setup::Model other = next.Open("t5", {.shared_bytes = kGiB, .instance_bytes = kGiB}, "float32");
  CHECK_FALSE(next.governor->Measured(*other.account));

  for (const char* bad :
       {"not json", "{\"format\": \"other\"}",
        "{\"format\": \"modelpool-footprints\", \"footprints\": [{\"model\": \"t5\", "
        "\"variant\": \"bfloat16\", \"device\": \"cuda\", \"instance_bytes\": -5}]}"}) {
    INFO(bad);
    std::ofstream(path, std::ios::trunc) << bad;
    Setup ignored(s);  // a warning, and the estimates
    Setup::Model m = ignored.Open("t5", {.shared_bytes = kGiB, .instance_bytes = kGiB}, "bfloat16");
    CHECK_FALSE(ignored.governor->Measured(*m.account));
    CHECK(ignored.governor->NextInstanceBytes(*m.account, Device::Cuda(0)) == 2 * kGiB);
  }
}

TEST_CASE("Unload counts an unload whose memory the device does not show free") {
  Setup g;
  Setup::Model a = g.Open("a", {.instance_bytes = 2 * kGiB});
  REQUIRE(g.Load(a, 2 * kGiB).ok());
  REQUIRE(g.Load(a, 2 * kGiB).ok());
  CHECK(g.governor->Unload(*a.account, Device::Cuda(0), 1) == 1);
  CHECK(g.governor->Stats().at(0).unloads_not_freed == 0);
  a.owner->set_leaks(true);
  CHECK(g.governor->Unload(*a.account, Device::Cuda(0), 5) == 1);
  CHECK(g.governor->Stats().at(0).unloads == 2);
  CHECK(g.governor->Stats().at(0).unloads_not_freed == 1);
}

TEST_CASE("Managers on one inventory share one governor") {
  auto inventory = std::make_shared<FakeDeviceInventory>();
  auto first = MemoryGovernor::Shared(inventory, Settings{});
  auto second = MemoryGovernor::Shared(inventory, WholeGpu());
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first->get() == second->get());
  auto other = MemoryGovernor::Shared(std::make_shared<FakeDeviceInventory>(), Settings{});
  REQUIRE(other.ok());
  CHECK(other->get() != first->get());
}

}  // namespace
}  // namespace modelpool
