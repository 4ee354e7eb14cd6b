// The decoder's attention kernels (Note [Decoder attention kernels]) against the same attention
// in float32 on matrix products. Built only where the CUDA kernels are (MODELPOOL_CUDA_KERNELS).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "lib/models/generation/decoder_caches.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernels/cross_attention.h"
#include "tests/models/float32_attention.h"
#include "torch/cuda.h"

// After libtorch: glog defines CHECK too.
#include "catch2/catch.hpp"

namespace modelpool {
namespace {

struct Case {
  c10::ScalarType dtype;
  int64_t texts, beams, heads, head_dim, capacity;
  std::vector<int64_t> lengths;  // one per text
};

std::string Describe(const Case& c) {
  std::string lengths;
  for (int64_t length : c.lengths) lengths += std::to_string(length) + " ";
  return std::string(c10::toString(c.dtype)) + ", " + std::to_string(c.texts) + " texts, " +
         std::to_string(c.beams) + " beams, " + std::to_string(c.heads) + " heads of " +
         std::to_string(c.head_dim) + ", capacity " + std::to_string(c.capacity) + ", lengths " +
         lengths;
}

// Random queries, keys and values of a case, in the layout DecoderCaches::SetCross takes.
struct Inputs {
  at::Tensor mask;         // bool [texts, input_length] on the GPU
  at::Tensor keys_values;  // [texts, input_length, 2 * hidden]: keys first
  at::Tensor queries;      // [texts * beams, hidden]
};

Inputs RandomInputs(const Case& c) {
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
  const int64_t input_length = *std::max_element(c.lengths.begin(), c.lengths.end());
  at::Tensor mask = at::zeros({c.texts, input_length}, at::kBool);
  for (int64_t b = 0; b < c.texts; ++b) mask[b].narrow(0, 0, c.lengths[b]).fill_(true);
  const int64_t hidden = c.heads * c.head_dim;
  return {mask.to(at::kCUDA), at::randn({c.texts, input_length, 2 * hidden}, options),
          at::randn({c.texts * c.beams, hidden}, options)};
}

double Scale(const Case& c) { return 1.0 / std::sqrt(static_cast<double>(c.head_dim)); }

// The Excess of `out` ([texts * beams, hidden]) over the attention in float32 of each text's
// queries over that text's keys alone.
double ErrorAgainstFloat32(const Case& c, const Inputs& inputs, const at::Tensor& out,
                           double spread_share) {
  const at::Tensor kv = inputs.keys_values.to(at::kFloat).cpu();
  const at::Tensor q =
      inputs.queries.to(at::kFloat).cpu().view({c.texts, c.beams, c.heads, c.head_dim});
  const at::Tensor got_all = out.to(at::kFloat).cpu();
  double error = -1;
  for (int64_t b = 0; b < c.texts; ++b) {
    const at::Tensor text =
        kv[b].narrow(0, 0, c.lengths[b]).view({c.lengths[b], 2, c.heads, c.head_dim});
    const at::Tensor k = text.select(1, 0).permute({1, 2, 0});  // [heads, head_dim, length]
    const at::Tensor v = text.select(1, 1).transpose(0, 1);     // [heads, length, head_dim]
    const at::Tensor scores = at::matmul(q[b].transpose(0, 1), k) * Scale(c);  // [heads, beams, l]
    const Expected attended = Attend(scores, v);  // [heads, beams, head_dim]
    const Expected expected{attended.out.transpose(0, 1), attended.spread.transpose(0, 1)};
    const at::Tensor got = got_all.narrow(0, b * c.beams, c.beams).view(expected.out.sizes());
    error = std::max(error, Excess(got, expected, spread_share));
  }
  return error;
}

// Through DecoderCaches, which picks the kernel (Note [Decoder attention kernels]).
double CachesError(const Case& c) {
  SummarizerLimits limits;
  limits.max_batch_size = c.texts;
  limits.max_num_beams = c.beams;
  limits.max_input_tokens = c.capacity;
  limits.max_new_tokens = 4;
  DecoderCaches caches(/*layers=*/2, c.heads, c.head_dim, limits,
                       at::TensorOptions().device(at::kCUDA).dtype(c.dtype));
  const Inputs inputs = RandomInputs(c);
  caches.Start(inputs.mask, c.beams);
  caches.SetCross(1, inputs.keys_values);
  // With beams, flash attention (Note [Split-key cross-attention]).
  return ErrorAgainstFloat32(c, inputs, caches.CrossAttention(1, inputs.queries, Scale(c)),
                             c.beams > 1 ? kHalfPrecisionShare : 0.0);
}

// The split-key kernel called directly, whatever the caches would pick: with several beams
// they pick it only where flash attention does not run.
double SplitKeyKernelError(const Case& c) {
  const Inputs inputs = RandomInputs(c);
  const int64_t input_length = inputs.mask.size(1);
  const at::Tensor by_head =  // [2, texts, heads, input_length, head_dim]
      inputs.keys_values.view({c.texts, input_length, 2, c.heads, c.head_dim})
          .permute({2, 0, 3, 1, 4})
          .contiguous();
  const at::Tensor lengths = inputs.mask.sum(1, /*keepdim=*/false, at::kInt);
  const kernels::CrossKeys keys{by_head[0].const_data_ptr(), by_head[1].const_data_ptr(),
                                input_length, lengths.const_data_ptr<int32_t>()};
  at::Tensor out = at::empty_like(inputs.queries);
  const at::Tensor workspace = at::empty(
      {kernels::CrossAttentionWorkspaceBytes(c.texts, c.beams, c.heads, c.head_dim, input_length)},
      out.options().dtype(at::kByte));
  const int error = kernels::CrossAttention(
      HalfTypeOf(inputs.queries), inputs.queries.const_data_ptr(), inputs.queries.stride(0), keys,
      static_cast<float>(Scale(c)), out.data_ptr(), workspace.data_ptr(), c.texts, c.beams, c.heads,
      c.head_dim, at::cuda::getCurrentCUDAStream().stream(), /*overlap=*/true);
  return error == 0 ? ErrorAgainstFloat32(c, inputs, out, /*spread_share=*/0.0) : 1e9;
}

TEST_CASE("Cross-attention on the GPU matches float32 attention over each text's own keys") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to compare");
    return;
  }
  at::manual_seed(7);
  std::vector<int64_t> mixed(64);  // 1 to 2048
  for (int64_t i = 0; i < 64; ++i) mixed[i] = i == 0 ? 2048 : (i * 733) % 2048 + 1;
  const std::vector<Case> cases = {
      // One text, one beam, one key; many short parts.
      {at::kBFloat16, 1, 1, 16, 64, 512, {1}},
      {at::kBFloat16, 1, 1, 16, 64, 512, {512}},
      // Lengths that leave parts empty, uneven and full; beams that do not fill a template.
      {at::kBFloat16, 5, 3, 4, 64, 300, {1, 7, 33, 299, 300}},
      {at::kHalf, 5, 4, 4, 64, 300, {300, 2, 129, 64, 65}},
      {at::kHalf, 3, 8, 2, 128, 1000, {1000, 513, 17}},
      {at::kBFloat16, 2, 2, 8, 32, 2500, {2500, 1201}},
      // The benchmark's shape: 32 texts of up to 512 tokens, 16 heads of 64, 4 beams.
      {at::kBFloat16, 32, 4, 16, 64, 512, std::vector<int64_t>(32, 512)},
      {at::kBFloat16, 32, 1, 16, 64, 512, std::vector<int64_t>(32, 480)},
      // One part a text, with several keys.
      {at::kBFloat16, 4, 1, 4, 64, 32, {32, 20, 5, 1}},
      // Parts of 1,024 keys, the most a block takes, with 8 beams; the smallest and the
      // largest head sizes.
      {at::kBFloat16, 64, 8, 32, 8, 2048, mixed},
      {at::kHalf, 2, 2, 2, 256, 100, {100, 37}},
  };
  std::vector<double> caches_errors, kernel_errors;
  for (const Case& c : cases) {
    caches_errors.push_back(CachesError(c));
    kernel_errors.push_back(SplitKeyKernelError(c));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(Describe(cases[i]));
    CHECK(caches_errors[i] < kMaxExcess);
    CHECK(kernel_errors[i] < kMaxExcess);
  }
}

// Two batches of steps of self-attention with random beam reorders between steps, read three
// ways: the static steps' attention on the decode kernel, the same with a bias (matrix products
// over every position held), and the eager steps' (matrix products over the positions
// written). Each against float32 attention over keys and values moved as the reorders say;
// returns the largest Excess of each way.
std::array<double, 3> SelfAttentionErrors(c10::ScalarType dtype) {
  const int64_t texts = 3, beams = 4, heads = 4, head_dim = 64, steps = 12;
  const int64_t rows = texts * beams;
  SummarizerLimits limits;
  limits.max_batch_size = texts;
  limits.max_num_beams = beams;
  limits.max_input_tokens = 8;
  limits.max_new_tokens = 16;
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  DecoderCaches caches(/*layers=*/2, heads, head_dim, limits, options);
  REQUIRE(caches.decode_kernel());
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  std::array<double, 3> errors = {-1, -1, -1};
  for (int batch = 0; batch < 2; ++batch) {
    caches.Start(at::ones({texts, 8}, options.dtype(at::kBool)), beams);
    at::Tensor keys = at::empty({rows, heads, 0, head_dim});  // float32, as the rows see them
    at::Tensor values = at::empty({rows, heads, 0, head_dim});
    for (int64_t p = 0; p < steps; ++p) {
      const at::Tensor qkv = at::randn({rows, 3, heads, head_dim}, options);
      const DecoderCaches::StepKeys at_p =
          caches.KeysAt(at::full({1}, p, options.dtype(at::kLong)));
      // Each writes the same keys and values at p, then reads.
      const std::array<at::Tensor, 3> outs = {
          caches.SelfAttentionAt(1, qkv, at_p, scale, at::Tensor()),
          caches.SelfAttentionAt(1, qkv, at_p, scale, at_p.mask),
          caches.SelfAttention(1, qkv, p, scale, at::Tensor())};

      const at::Tensor step = qkv.to(at::kFloat).cpu();
      keys = at::cat({keys, step.select(1, 1).unsqueeze(2)}, 2);
      values = at::cat({values, step.select(1, 2).unsqueeze(2)}, 2);
      const at::Tensor scores = at::matmul(step.select(1, 0).unsqueeze(2), keys.transpose(2, 3));
      const Expected attended = Attend(scores * scale, values);
      const Expected expected{attended.out.view({rows, heads * head_dim}),
                              attended.spread.view({rows, heads * head_dim})};
      for (size_t i = 0; i < outs.size(); ++i) {
        const double share = i == 0 ? 0.0 : kHalfPrecisionShare;  // matrix products after the first
        errors[i] = std::max(errors[i], Excess(outs[i].to(at::kFloat).cpu(), expected, share));
      }

      const at::Tensor parents = at::randint(rows, {rows}, options.dtype(at::kLong));
      caches.Reorder(parents, p + 1);
      keys = keys.index_select(0, parents.cpu());
      values = values.index_select(0, parents.cpu());
    }
  }
  return errors;
}

TEST_CASE("Self-attention on the GPU follows beam reorders") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to compare");
    return;
  }
  at::manual_seed(11);
  for (const c10::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const std::array<double, 3> errors = SelfAttentionErrors(dtype);
    INFO(c10::toString(dtype));
    CHECK(errors[0] < kMaxExcess);  // the decode kernel
    CHECK(errors[1] < kMaxExcess);  // matrix products over every position held
    CHECK(errors[2] < kMaxExcess);  // eager matrix products
  }
}

}  // namespace
}  // namespace modelpool
