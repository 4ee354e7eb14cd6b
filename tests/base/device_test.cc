#include "modelpool/base/device.h"

#include <catch2/catch.hpp>

#include "modelpool/base/dtype.h"

namespace modelpool {
namespace {

TEST_CASE("Device parses cpu, cuda and cuda:N") {
  CHECK(*Device::Parse("cpu") == Device::Cpu());
  CHECK(*Device::Parse(" CUDA ") == Device::Cuda(0));
  CHECK(*Device::Parse("cuda:3") == Device::Cuda(3));
  CHECK(Device::Cuda(1).ToString() == "cuda:1");
  CHECK(Device::Cpu().ToString() == "cpu");
}

TEST_CASE("Device rejects malformed names with InvalidArgument") {
  for (const char* bad : {"", "cuda:", "cuda:-1", "cuda:x", "tpu", "cuda:1:2"}) {
    INFO(bad);
    absl::StatusOr<Device> d = Device::Parse(bad);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Device lists parse in order and reject repeats") {
  absl::StatusOr<std::vector<Device>> list = Device::ParseList("cuda:1,cuda:0");
  REQUIRE(list.ok());
  CHECK(*list == std::vector<Device>{Device::Cuda(1), Device::Cuda(0)});
  CHECK(Device::ParseList("cuda:0,cuda:0").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Device::ParseList("cuda:0,,cuda:1").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("DType parses its names and aliases") {
  CHECK(*ParseDType("fp16") == DType::kFloat16);
  CHECK(*ParseDType("BFloat16") == DType::kBFloat16);
  CHECK(*ParseDType("float32") == DType::kFloat32);
  CHECK(DTypeName(DType::kBFloat16) == "bfloat16");
  CHECK(ParseDType("int8").status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelpool
