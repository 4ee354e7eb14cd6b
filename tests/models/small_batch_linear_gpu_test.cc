// The small-batch linear kernel (Note [Small-batch linear]) against the same product in
// float32. Built only where the CUDA kernels are (MODELPOOL_CUDA_KERNELS).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "lib/models/fused_ops.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernels/small_batch_linear.h"
#include "torch/cuda.h"

// After libtorch: glog defines CHECK too.
#include "catch2/catch.hpp"

namespace modelpool {
namespace {

struct Case {
  c10::ScalarType dtype;
  int64_t rows, in, out;
  bool bias;
};

std::string Describe(const Case& c) {
  return std::string(c10::toString(c.dtype)) + ", " + std::to_string(c.rows) + " rows, " +
         std::to_string(c.in) + " in, " + std::to_string(c.out) + " out, " +
         (c.bias ? "bias" : "no bias");
}

struct Operands {
  at::Tensor x, weight, bias;  // bias undefined when the case has none
};

Operands RandomOperands(const Case& c) {
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
  return {at::randn({c.rows, c.in}, options), at::randn({c.out, c.in}, options),
          c.bias ? at::randn({c.out}, options) : at::Tensor()};
}

// How far `got` strays past its tolerance around the float32 product of the same (rounded)
// operands: the rounding of the output to 8 or 11 bits, and 1e-4 of Σ|x||w|, far more than
// float32 sums lose and far less than one chunk of 32 inputs dropped, doubled or paired with
// the wrong weights.
// With an activation, the float32 reference goes through it too (GELU's slope is at most 1.13:
// the spread term grows by as much).
double Excess(const Case& c, const Operands& o, const at::Tensor& got,
              kernels::SmallBatchActivation activation = kernels::SmallBatchActivation::kNone) {
  const at::Tensor x = o.x.to(at::kFloat);
  const at::Tensor w = o.weight.to(at::kFloat);
  at::Tensor expected = at::matmul(x, w.t());
  if (o.bias.defined()) expected = expected + o.bias.to(at::kFloat);
  at::Tensor spread = at::matmul(x.abs(), w.abs().t());
  switch (activation) {
    case kernels::SmallBatchActivation::kGelu:
      expected = at::gelu(expected), spread = spread * 1.13;
      break;
    case kernels::SmallBatchActivation::kGeluTanh:
      expected = at::gelu(expected, "tanh"), spread = spread * 1.13;
      break;
    case kernels::SmallBatchActivation::kRelu:
      expected = at::relu(expected);
      break;
    case kernels::SmallBatchActivation::kNone:
      break;
  }
  const double rounding = c.dtype == at::kHalf ? 1e-3 : 8e-3;
  return ((got.to(at::kFloat) - expected).abs() - expected.abs() * rounding - spread * 1e-4)
      .max()
      .item<double>();
}

constexpr double kMaxExcess = 1e-4;

// Whether device 0 is one the kernel is for (compute capability 9 or later), where the kernel
// must also report that it runs (built for compute_90); without one, a warning says so.
bool OnHopper() {
  if (!torch::cuda::is_available() || at::cuda::getDeviceProperties(0)->major < 9) {
    WARN("no CUDA device of compute capability 9 or later: nothing to compare");
    return false;
  }
  REQUIRE(kernels::SmallBatchLinearRunsOn(0).value_or(false));
  return true;
}

TEST_CASE("The small-batch linear kernel matches a float32 product for every row count") {
  if (!OnHopper()) return;
  at::manual_seed(11);
  const std::vector<int64_t> row_counts = {1, 7, 8, 9, 16, 17, 31, 32, 33, 63, 64};
  struct Shape {
    int64_t in, out;
  };
  // One chunk and one block; inputs that do not split (3 and 5 chunks, one block a cluster),
  // that split in 2 (2 and 6 chunks) and in 4; decoder shapes (t5-large, bart-large, t5 v1.1's
  // 2816).
  const std::vector<Shape> shapes = {{32, 64},     {96, 64},     {160, 128},   {64, 64},
                                     {192, 64},    {128, 128},   {1024, 1024}, {1024, 3072},
                                     {4096, 1024}, {1024, 4096}, {2816, 1024}};
  std::vector<Case> cases;
  int n = 0;
  for (c10::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (int64_t rows : row_counts) {
      for (const Shape& shape : shapes) {
        // With and without a bias, alternating per row count too, so every shape has both.
        cases.push_back(
            {dtype, rows, shape.in, shape.out, (n + n / static_cast<int>(shapes.size())) % 2 == 0});
        ++n;
      }
    }
  }
  std::vector<double> excess;
  std::vector<std::string> failures;
  for (const Case& c : cases) {
    const Operands o = RandomOperands(c);
    const std::optional<at::Tensor> got = SmallBatchLinear(o.x, o.weight, o.bias);
    if (!got.has_value()) {
      failures.push_back(Describe(c) + ": declined");
      continue;
    }
    const double e = Excess(c, o, *got);
    if (!(e <= kMaxExcess)) failures.push_back(Describe(c) + ": excess " + std::to_string(e));
    // The same call again gives the same bits: the partial sums meet in a fixed order.
    const at::Tensor again = *SmallBatchLinear(o.x, o.weight, o.bias);
    if (!at::equal(*got, again)) failures.push_back(Describe(c) + ": a second call differs");
  }
  INFO(failures.size() << " of " << cases.size() << " cases failed");
  for (const std::string& failure : failures) FAIL_CHECK(failure);
  CHECK(failures.empty());
}

TEST_CASE("The small-batch linear kernel applies GELU and ReLU after the bias") {
  if (!OnHopper()) return;
  at::manual_seed(13);
  using kernels::SmallBatchActivation;
  for (const SmallBatchActivation activation :
       {SmallBatchActivation::kGelu, SmallBatchActivation::kGeluTanh,
        SmallBatchActivation::kRelu}) {
    for (const Case& c :
         {Case{at::kBFloat16, 1, 1024, 4096, true}, Case{at::kHalf, 8, 256, 64, false},
          Case{at::kBFloat16, 33, 256, 128, true}}) {
      INFO(Describe(c) << ", activation " << static_cast<int>(activation));
      const Operands o = RandomOperands(c);
      const std::optional<at::Tensor> got = SmallBatchLinear(o.x, o.weight, o.bias, activation);
      REQUIRE(got.has_value());
      CHECK(Excess(c, o, *got, activation) <= kMaxExcess);
      // Not the plain product: the activation changed some outputs.
      CHECK_FALSE(at::equal(*got, *SmallBatchLinear(o.x, o.weight, o.bias)));
    }
  }
}

TEST_CASE("The small-batch linear kernel's two GELUs are the forms they are named after") {
  if (!OnHopper()) return;
  at::manual_seed(14);
  // The erf and tanh forms differ by at most 4.7e-4, near |x| = 2.7; float16's rounding there is
  // up to 1e-3, so one output cannot tell them apart, but the mean distance over 4096 outputs
  // with pre-activations spread over [-4, 4] can.
  const at::TensorOptions f16 = at::TensorOptions().device(at::kCUDA).dtype(at::kHalf);
  const at::Tensor x = at::randn({8, 32}, f16) * 0.6;
  const at::Tensor w = at::randn({512, 32}, f16) * 0.6;
  const at::Tensor pre = at::matmul(x.to(at::kFloat), w.to(at::kFloat).t());
  const at::Tensor erf_form = at::gelu(pre);
  const at::Tensor tanh_form = at::gelu(pre, "tanh");
  const auto distance = [](const at::Tensor& got, const at::Tensor& want) {
    return (got.to(at::kFloat) - want).abs().mean().item<double>();
  };
  using kernels::SmallBatchActivation;
  const at::Tensor gelu = *SmallBatchLinear(x, w, at::Tensor(), SmallBatchActivation::kGelu);
  const at::Tensor gelu_tanh =
      *SmallBatchLinear(x, w, at::Tensor(), SmallBatchActivation::kGeluTanh);
  CHECK(distance(gelu, erf_form) < 0.8 * distance(gelu, tanh_form));
  CHECK(distance(gelu_tanh, tanh_form) < 0.8 * distance(gelu_tanh, erf_form));
}

TEST_CASE("The small-batch linear kernel writes its rows and nothing past them") {
  if (!OnHopper()) return;
  at::manual_seed(12);
  for (int64_t rows : {1, 9, 33, 64}) {
    INFO(rows << " rows");
    const Case c{at::kBFloat16, rows, 256, 64, true};
    const Operands o = RandomOperands(c);
    // One row more than asked for, filled with 7s: it must stay so.
    at::Tensor y = at::full({rows + 1, c.out}, 7.0, o.x.options());
    const int error = kernels::SmallBatchLinear(
        HalfTypeOf(o.x), o.x.const_data_ptr(), o.weight.const_data_ptr(), o.bias.const_data_ptr(),
        y.data_ptr(), rows, c.in, c.out, at::cuda::getCurrentCUDAStream().stream(),
        /*overlap=*/true);
    REQUIRE(error == 0);
    CHECK(Excess(c, o, y.narrow(0, 0, rows)) <= kMaxExcess);
    CHECK(at::equal(y[rows], at::full({c.out}, 7.0, o.x.options())));
  }
}

TEST_CASE("The small-batch linear kernel declines what it does not take, running nothing") {
  if (!OnHopper()) return;
  const at::TensorOptions bf16 = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  const at::Tensor w = at::randn({64, 256}, bf16);
  const at::Tensor x = at::randn({4, 256}, bf16);
  CHECK(SmallBatchLinear(x, w, at::Tensor()).has_value());
  // More rows than the kernel takes.
  CHECK_FALSE(SmallBatchLinear(at::randn({65, 256}, bf16), w, at::Tensor()).has_value());
  // Inputs not a multiple of 32, outputs not of 64.
  CHECK_FALSE(SmallBatchLinear(at::randn({4, 48}, bf16), at::randn({64, 48}, bf16), at::Tensor())
                  .has_value());
  CHECK_FALSE(SmallBatchLinear(x, at::randn({48, 256}, bf16), at::Tensor()).has_value());
  // float32, the CPU, mixed types.
  CHECK_FALSE(SmallBatchLinear(x.to(at::kFloat), w.to(at::kFloat), at::Tensor()).has_value());
  CHECK_FALSE(SmallBatchLinear(x.cpu(), w.cpu(), at::Tensor()).has_value());
  CHECK_FALSE(SmallBatchLinear(x, w.to(at::kHalf), at::Tensor()).has_value());
  // Not contiguous; contiguous but 2 bytes past an aligned start; a bias of the wrong length.
  CHECK_FALSE(SmallBatchLinear(at::randn({256, 4}, bf16).t(), w, at::Tensor()).has_value());
  const at::Tensor shifted = at::randn({4 * 256 + 1}, bf16).narrow(0, 1, 4 * 256).view({4, 256});
  CHECK_FALSE(SmallBatchLinear(shifted, w, at::Tensor()).has_value());
  CHECK_FALSE(SmallBatchLinear(x, w, at::randn({63}, bf16)).has_value());
  // Where cuBLAS was measured faster: more than 8 rows, more outputs than inputs.
  CHECK(SmallBatchLinearWhereFaster(x, w, at::Tensor()).has_value());
  CHECK_FALSE(SmallBatchLinearWhereFaster(at::randn({9, 256}, bf16), w, at::Tensor()).has_value());
  CHECK_FALSE(
      SmallBatchLinearWhereFaster(x, at::randn({320, 256}, bf16), at::Tensor()).has_value());
  // One row may have up to four times as many outputs as inputs.
  const at::Tensor row = at::randn({1, 256}, bf16);
  CHECK(SmallBatchLinearWhereFaster(row, at::randn({1024, 256}, bf16), at::Tensor()).has_value());
  CHECK_FALSE(
      SmallBatchLinearWhereFaster(row, at::randn({1088, 256}, bf16), at::Tensor()).has_value());
  // The kernel's own entry refuses shapes the same way, launching nothing.
  CHECK_FALSE(kernels::CanSmallBatchLinear(0, 256, 64));
  CHECK_FALSE(kernels::CanSmallBatchLinear(65, 256, 64));
  // A slice of inputs too wide for shared memory: 32 * 4099 inputs do not split.
  CHECK_FALSE(kernels::CanSmallBatchLinear(64, 32 * 4099, 64));
  CHECK(kernels::SmallBatchLinear(kernels::HalfType::kBFloat16, nullptr, nullptr, nullptr, nullptr,
                                  4, 40, 64, nullptr, /*overlap=*/true) == -1);
}

}  // namespace
}  // namespace modelpool
