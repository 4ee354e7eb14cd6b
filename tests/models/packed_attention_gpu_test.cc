// The packed short-row attention kernel (Note [Packed short-row attention]) against float32
// attention of each row over its own tokens. Built only where the CUDA kernels are
// (MODELPOOL_CUDA_KERNELS).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "lib/models/fused_ops.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernels/packed_attention.h"
#include "tests/models/float32_attention.h"
#include "torch/cuda.h"

// After libtorch: glog defines CHECK too.
#include "catch2/catch.hpp"

namespace modelpool {
namespace {

struct Case {
  c10::ScalarType dtype;
  int64_t heads;
  std::vector<int64_t> lengths;  // one per row
  int64_t head_dim = 64;
};

std::string Describe(const Case& c) {
  std::string lengths;
  for (size_t i = 0; i < std::min<size_t>(c.lengths.size(), 12); ++i) {
    lengths += std::to_string(c.lengths[i]) + " ";
  }
  return std::string(c10::toString(c.dtype)) + ", " + std::to_string(c.heads) + " heads of " +
         std::to_string(c.head_dim) + ", " + std::to_string(c.lengths.size()) + " rows: " + lengths;
}

int64_t Tokens(const Case& c) {
  int64_t tokens = 0;
  for (int64_t length : c.lengths) tokens += length;
  return tokens;
}

// The Excess of `out` ([tokens, hidden]) over float32 attention of each row of `qkv` ([tokens,
// 3 * hidden]) over its own tokens.
double ErrorAgainstFloat32(const Case& c, const at::Tensor& qkv, const at::Tensor& out) {
  const at::Tensor all = qkv.to(at::kFloat).cpu().view({-1, 3, c.heads, c.head_dim});
  const at::Tensor got_all = out.to(at::kFloat).cpu().view({-1, c.heads, c.head_dim});
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  double error = -1;
  int64_t start = 0;
  for (int64_t length : c.lengths) {
    const at::Tensor row = all.narrow(0, start, length).permute({1, 2, 0, 3});  // [3, heads, l, d]
    const at::Tensor scores = at::matmul(row[0], row[1].transpose(-2, -1)) * scale;
    const Expected attended = Attend(scores, row[2]);  // [heads, length, head_dim]
    const Expected expected{attended.out.transpose(0, 1), attended.spread.transpose(0, 1)};
    error =
        std::max(error, Excess(got_all.narrow(0, start, length), expected, kHalfPrecisionShare));
    start += length;
  }
  return error;
}

at::Tensor StartsOf(const Case& c) {
  std::vector<int32_t> starts = {0};
  for (int64_t length : c.lengths) starts.push_back(starts.back() + static_cast<int32_t>(length));
  return at::tensor(starts, at::kInt).to(at::kCUDA);
}

at::Tensor RowIdsOf(const Case& c) {
  std::vector<int32_t> row_ids;
  for (size_t row = 0; row < c.lengths.size(); ++row) {
    row_ids.insert(row_ids.end(), c.lengths[row], static_cast<int32_t>(row));
  }
  return at::tensor(row_ids, at::kInt).to(at::kCUDA);
}

// Through PackedSelfAttention, as the BERT encoder calls it.
double WrapperError(const Case& c) {
  const at::Tensor qkv = at::randn({Tokens(c), 3 * c.heads * c.head_dim},
                                   at::TensorOptions().device(at::kCUDA).dtype(c.dtype));
  const at::Tensor out = PackedSelfAttention(qkv, StartsOf(c), RowIdsOf(c), c.heads,
                                             1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  return ErrorAgainstFloat32(c, qkv, out);
}

// The kernel called directly on buffers longer than the batch: what lies past the last row's
// tokens (NaN in the input, a marker in the output) is neither read nor written. Returns the
// Excess, or 1e9 where the tail was touched or the launch failed.
double TailUntouchedError(const Case& c) {
  const int64_t tokens = Tokens(c), hidden = c.heads * c.head_dim, tail = 70;
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
  at::Tensor qkv = at::randn({tokens + tail, 3 * hidden}, options);
  qkv.narrow(0, tokens, tail).fill_(std::numeric_limits<float>::quiet_NaN());
  at::Tensor out = at::full({tokens + tail, hidden}, 7.0, options);
  const at::Tensor starts = StartsOf(c), row_ids = RowIdsOf(c);
  const int error = kernels::PackedAttention(
      HalfTypeOf(qkv), qkv.const_data_ptr(), qkv.stride(0), starts.const_data_ptr<int32_t>(),
      row_ids.const_data_ptr<int32_t>(), tokens, c.heads, c.head_dim,
      static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), out.data_ptr(),
      at::cuda::getCurrentCUDAStream().stream());
  if (error != 0 || !out.narrow(0, tokens, tail).eq(7.0).all().item<bool>()) return 1e9;
  return ErrorAgainstFloat32(c, qkv.narrow(0, 0, tokens), out.narrow(0, 0, tokens));
}

TEST_CASE("Packed attention on the GPU matches float32 attention of each row over its own tokens") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to compare");
    return;
  }
  at::manual_seed(11);
  std::vector<int64_t> many(3000);  // short rows, as an embedding batch of short texts
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>(i * 37 % 23 + 1);
  const std::vector<Case> cases = {
      // One token; one tile exactly; one past it.
      {at::kHalf, 1, {1}},
      {at::kHalf, 2, {64}},
      {at::kBFloat16, 2, {65}},
      // Rows that end inside, at and past a tile, next to each other; several rows in one
      // tile, and rows across two tiles' boundary.
      {at::kHalf, 3, {7, 63, 64, 65, 128, 129, 2}},
      {at::kBFloat16, 2, {3, 5, 70, 1, 1, 60, 130, 8, 8, 8, 8, 8, 8, 8, 8, 8, 40}},
      {at::kBFloat16, 16, {200, 1, 513, 77, 31}},
      // The longest rows BERT takes, and longer.
      {at::kHalf, 16, {512, 512, 3}},
      {at::kBFloat16, 4, {1500, 9}},
      {at::kHalf, 2, many},
      // Heads of 32 (MiniLM, bge-small), the same shapes.
      {at::kHalf, 12, {1}, 32},
      {at::kBFloat16, 3, {7, 63, 64, 65, 128, 129, 2}, 32},
      {at::kHalf, 12, {200, 1, 513, 77, 31}, 32},
      {at::kBFloat16, 2, many, 32},
  };
  std::vector<double> wrapper_errors, tail_errors;
  for (const Case& c : cases) {
    wrapper_errors.push_back(WrapperError(c));
    tail_errors.push_back(TailUntouchedError(c));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(Describe(cases[i]));
    CHECK(wrapper_errors[i] < kMaxExcess);
    CHECK(tail_errors[i] < kMaxExcess);
  }
}

TEST_CASE("Packed attention takes heads of 32 and 64 only, and launches nothing for others") {
  CHECK(kernels::CanPackedAttention(16, 64));
  CHECK(kernels::CanPackedAttention(12, 32));
  CHECK_FALSE(kernels::CanPackedAttention(16, 16));
  CHECK_FALSE(kernels::CanPackedAttention(16, 48));
  CHECK_FALSE(kernels::CanPackedAttention(16, 128));
  CHECK_FALSE(kernels::CanPackedAttention(0, 64));
  const auto launch = [](int64_t token_stride, int64_t tokens, int64_t head_dim, float scale) {
    return kernels::PackedAttention(kernels::HalfType::kFloat16, nullptr, token_stride, nullptr,
                                    nullptr, tokens, 1, head_dim, scale, nullptr, nullptr);
  };
  CHECK(launch(96, 10, 96, 1.f) == -1);
  // Negative token counts, and scales that would not keep masked scores at -inf.
  for (const float scale : {0.f, -0.125f, std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity()}) {
    CHECK(launch(192, 10, 64, scale) == -1);
  }
  CHECK(launch(192, -1, 64, 1.f) == -1);
  // No tokens: nothing to do, and no launch.
  CHECK(launch(192, 0, 64, 1.f) == 0);
}

TEST_CASE("PackedSelfAttention refuses tensors the kernel cannot take, with an error") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to call");
    return;
  }
  const Case c{at::kHalf, 2, {5, 3}};
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(at::kHalf);
  const at::Tensor qkv = at::randn({Tokens(c), 3 * c.heads * c.head_dim}, options);
  const at::Tensor starts = StartsOf(c), row_ids = RowIdsOf(c);
  CHECK_NOTHROW(PackedSelfAttention(qkv, starts, row_ids, c.heads, 0.125));
  CHECK_THROWS(PackedSelfAttention(qkv, starts, row_ids, 0, 0.125));        // no heads
  CHECK_THROWS(PackedSelfAttention(qkv.cpu(), starts, row_ids, 2, 0.125));  // not on the GPU
  CHECK_THROWS(PackedSelfAttention(qkv.to(at::kFloat), starts, row_ids, 2, 0.125));
  CHECK_THROWS(PackedSelfAttention(qkv, starts.to(at::kLong), row_ids, 2, 0.125));
  CHECK_THROWS(PackedSelfAttention(qkv, starts.narrow(0, 0, 1), row_ids, 2, 0.125));
  CHECK_THROWS(PackedSelfAttention(qkv, starts, row_ids.narrow(0, 0, 4), 2, 0.125));
  // Contiguous, but 2 bytes past a 16-byte boundary.
  const at::Tensor shifted = at::randn({qkv.numel() + 1}, options).narrow(0, 1, qkv.numel());
  CHECK_THROWS(PackedSelfAttention(shifted.view(qkv.sizes()), starts, row_ids, 2, 0.125));
}

}  // namespace
}  // namespace modelpool
