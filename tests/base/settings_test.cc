#include "modelpool/base/settings.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "tests/testing/fake_env.h"

namespace modelpool {
namespace {

using ::modelpool::testing::FakeEnv;

TEST_CASE("Settings::FromEnv keeps the defaults when nothing is set") {
  absl::StatusOr<Settings> s = Settings::FromEnv({}, FakeEnv({}));
  REQUIRE(s.ok());
  CHECK(s->max_instances == Settings{}.max_instances);
  CHECK_FALSE(s->force_cpu);
  CHECK(s->devices.empty());
  CHECK_FALSE(s->dtype.has_value());
}

TEST_CASE("Settings::FromEnv reads every variable") {
  absl::StatusOr<Settings> s =
      Settings::FromEnv({}, FakeEnv({{"MODELPOOL_MAX_INSTANCES", "7"},
                                     {"MODELPOOL_FORCE_GPU", "yes"},
                                     {"MODELPOOL_DEVICES", "cuda:0,cuda:1"},
                                     {"MODELPOOL_DTYPE", "bf16"},
                                     {"MODELPOOL_VRAM_SAFETY_MARGIN_MB", "512"},
                                     {"MODELPOOL_MEMORY_THRESHOLD", "0.9"},
                                     {"MODELPOOL_GPU_MEMORY_BUDGET_MB", "20000"},
                                     {"MODELPOOL_CPU_MEMORY_BUDGET_MB", "4096"},
                                     {"MODELPOOL_FOOTPRINT_FACTOR", "1.5"},
                                     {"MODELPOOL_FOOTPRINT_FILE", "/tmp/footprints.json"}}));
  REQUIRE(s.ok());
  CHECK(s->max_instances == 7);
  CHECK(s->force_gpu);
  CHECK(s->devices == std::vector<Device>{Device::Cuda(0), Device::Cuda(1)});
  CHECK(s->dtype == DType::kBFloat16);
  CHECK(s->vram_safety_margin_bytes == 512LL << 20);
  CHECK(s->memory_threshold == 0.9);
  CHECK(s->gpu_memory_budget_bytes == 20000LL << 20);
  CHECK(s->cpu_memory_budget_bytes == 4096LL << 20);
  CHECK(s->footprint_estimate_factor == 1.5);
  CHECK(s->footprint_file == "/tmp/footprints.json");
}

TEST_CASE("Settings::FromEnv names the variable of a bad value") {
  const std::map<std::string, std::string> bad[] = {
      {{"MODELPOOL_MAX_INSTANCES", "many"}},
      {{"MODELPOOL_MAX_INSTANCES", "0"}},
      {{"MODELPOOL_MAX_INSTANCES", "-2"}},
      {{"MODELPOOL_FORCE_CPU", "maybe"}},
      {{"MODELPOOL_FORCE_GPU", "2"}},
      {{"MODELPOOL_DEVICES", "cuda:a"}},
      {{"MODELPOOL_DTYPE", "int4"}},
      {{"MODELPOOL_VRAM_SAFETY_MARGIN_MB", "1e3"}},
      {{"MODELPOOL_MEMORY_THRESHOLD", "0"}},
      {{"MODELPOOL_MEMORY_THRESHOLD", "1.5"}},
      {{"MODELPOOL_MEMORY_THRESHOLD", "nan"}},
      {{"MODELPOOL_GPU_MEMORY_BUDGET_MB", "-1"}},
      {{"MODELPOOL_CPU_MEMORY_BUDGET_MB", "lots"}},
      {{"MODELPOOL_FOOTPRINT_FACTOR", "0"}},
  };
  for (const auto& vars : bad) {
    const std::string name = vars.begin()->first;
    INFO(name << "=" << vars.begin()->second);
    absl::StatusOr<Settings> s = Settings::FromEnv({}, FakeEnv(vars));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.status().message()).find(name) != std::string::npos);
  }
}

TEST_CASE("Settings::FromEnv rejects force_cpu together with force_gpu") {
  absl::StatusOr<Settings> s =
      Settings::FromEnv({}, FakeEnv({{"MODELPOOL_FORCE_CPU", "1"}, {"MODELPOOL_FORCE_GPU", "1"}}));
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Settings::FromEnv applies variables on top of the base it is given") {
  Settings base;
  base.max_instances = 3;
  base.force_cpu = true;
  absl::StatusOr<Settings> s = Settings::FromEnv(base, FakeEnv({{"MODELPOOL_MAX_INSTANCES", "5"}}));
  REQUIRE(s.ok());
  CHECK(s->max_instances == 5);
  CHECK(s->force_cpu);
}

}  // namespace
}  // namespace modelpool
