// The decoder's attention kernels (Note [Decoder attention kernels]) against the same attention
// in float32 on matrix products. Built only where the CUDA kernels are (MODELPOOL_CUDA_KERNELS).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ATen/ATen.h"
#include "ATen/cuda/CUDAContext.h"
#include "lib/models/generation/decoder_caches.h"
#include "lib/models/kernels/cross_attention.h"
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

// The largest difference between `out` ([texts * beams, hidden]) and the attention in float32
// of each text's queries over that text's keys alone.
double ErrorAgainstFloat32(const Case& c, const Inputs& inputs, const at::Tensor& out) {
  const at::Tensor kv = inputs.keys_values.to(at::kFloat).cpu();
  const at::Tensor q =
      inputs.queries.to(at::kFloat).cpu().view({c.texts, c.beams, c.heads, c.head_dim});
  const at::Tensor got_all = out.to(at::kFloat).cpu();
  double error = 0;
  for (int64_t b = 0; b < c.texts; ++b) {
    const at::Tensor text =
        kv[b].narrow(0, 0, c.lengths[b]).view({c.lengths[b], 2, c.heads, c.head_dim});
    const at::Tensor k = text.select(1, 0).permute({1, 2, 0});  // [heads, head_dim, length]
    const at::Tensor v = text.select(1, 1).transpose(0, 1);     // [heads, length, head_dim]
    const at::Tensor scores = at::matmul(q[b].transpose(0, 1), k) * Scale(c);  // [heads, beams, l]
    const at::Tensor expected = at::matmul(at::softmax(scores, -1), v).transpose(0, 1);
    const at::Tensor got = got_all.narrow(0, b * c.beams, c.beams).view(expected.sizes());
    error = std::max(error, (got - expected).abs().max().item<double>());
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
  return ErrorAgainstFloat32(c, inputs, caches.CrossAttention(1, inputs.queries, Scale(c)));
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
      c.dtype == at::kHalf ? kernels::HalfType::kFloat16 : kernels::HalfType::kBFloat16,
      inputs.queries.const_data_ptr(), inputs.queries.stride(0), keys, static_cast<float>(Scale(c)),
      out.data_ptr(), workspace.data_ptr(), c.texts, c.beams, c.heads, c.head_dim,
      at::cuda::getCurrentCUDAStream().stream());
  return error == 0 ? ErrorAgainstFloat32(c, inputs, out) : 1e9;
}

TEST_CASE("Cross-attention on the GPU matches float32 attention over each text's own keys") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to compare");
    return;
  }
  at::manual_seed(7);
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
  };
  std::vector<double> caches_errors, kernel_errors;
  for (const Case& c : cases) {
    caches_errors.push_back(CachesError(c));
    kernel_errors.push_back(SplitKeyKernelError(c));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(Describe(cases[i]));
    // Softmax-weighted means of values drawn from N(0, 1), rounded once to 8 or 11 bits.
    CHECK(caches_errors[i] < 2e-2);
    CHECK(kernel_errors[i] < 2e-2);
  }
}

// Steps of self-attention with random beam reorders between them, through the static steps'
// attention (the decode kernel) and the eager one (matrix products), each against float32
// attention over keys and values moved as the reorders say. Returns the largest differences.
std::pair<double, double> SelfAttentionErrors(c10::ScalarType dtype) {
  const int64_t texts = 3, beams = 4, heads = 4, head_dim = 64, steps = 12;
  const int64_t rows = texts * beams;
  SummarizerLimits limits;
  limits.max_batch_size = texts;
  limits.max_num_beams = beams;
  limits.max_input_tokens = 8;
  limits.max_new_tokens = 16;
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  DecoderCaches caches(/*layers=*/2, heads, head_dim, limits, options);
  caches.Start(at::ones({texts, 8}, options.dtype(at::kBool)), beams);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  at::Tensor keys = at::empty({rows, heads, 0, head_dim});  // float32, as the rows see them
  at::Tensor values = at::empty({rows, heads, 0, head_dim});
  double kernel_error = 0, eager_error = 0;
  for (int64_t p = 0; p < steps; ++p) {
    const at::Tensor qkv = at::randn({rows, 3, heads, head_dim}, options);
    const at::Tensor at_p = at::full({1}, p, options.dtype(at::kLong));
    const at::Tensor kernel_out =
        caches.SelfAttentionAt(1, qkv, caches.KeysAt(at_p), scale, at::Tensor());
    // Writes the same keys and values again, then reads them with matrix products.
    const at::Tensor eager_out = caches.SelfAttention(1, qkv, p, scale, at::Tensor());

    const at::Tensor step = qkv.to(at::kFloat).cpu();
    keys = at::cat({keys, step.select(1, 1).unsqueeze(2)}, 2);
    values = at::cat({values, step.select(1, 2).unsqueeze(2)}, 2);
    const at::Tensor scores = at::matmul(step.select(1, 0).unsqueeze(2), keys.transpose(2, 3));
    const at::Tensor expected =
        at::matmul(at::softmax(scores * scale, -1), values).view({rows, heads * head_dim});
    kernel_error = std::max(
        kernel_error, (kernel_out.to(at::kFloat).cpu() - expected).abs().max().item<double>());
    eager_error = std::max(eager_error,
                           (eager_out.to(at::kFloat).cpu() - expected).abs().max().item<double>());

    const at::Tensor parents = at::randint(rows, {rows}, options.dtype(at::kLong));
    caches.Reorder(parents, p + 1);
    keys = keys.index_select(0, parents.cpu());
    values = values.index_select(0, parents.cpu());
  }
  return {kernel_error, eager_error};
}

TEST_CASE("Self-attention on the GPU follows beam reorders") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing to compare");
    return;
  }
  at::manual_seed(11);
  const auto [bf16_kernel, bf16_eager] = SelfAttentionErrors(at::kBFloat16);
  const auto [fp16_kernel, fp16_eager] = SelfAttentionErrors(at::kHalf);
  CHECK(bf16_kernel < 2e-2);
  CHECK(bf16_eager < 2e-2);
  CHECK(fp16_kernel < 2e-2);
  CHECK(fp16_eager < 2e-2);
}

}  // namespace
}  // namespace modelpool
