// attention_bench: BERT's self-attention over packed rows on our kernel (Note [Packed short-row
// attention]) against flash attention, in float16, 16 heads of 64 (bert-large), batches of
// about 16,384 tokens in rows of one length: microseconds a call, each side's calls replayed
// from a CUDA graph. One JSON line a length: useful TFLOP/s (4 * hidden * Σ length² over the
// rows), and the bytes a second of reading the projections and writing the context once
// (8 * hidden bytes a token); "ratio" is flash attention's time over ours.
//
//   attention_bench
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "ATen/ATen.h"
#include "absl/strings/str_format.h"
#include "benchmarks/graph_timing.h"
#include "lib/models/flash_attention.h"
#include "lib/models/fused_ops.h"
#include "torch/cuda.h"

int main() {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "attention_bench needs a CUDA device\n");
    return 1;
  }
  constexpr int64_t kBudget = 16384;
  const at::TensorOptions options = at::TensorOptions().device(at::kCUDA).dtype(at::kHalf);
  // bert-large's heads, then MiniLM's.
  for (const std::pair<int64_t, int64_t>& shape : {std::pair<int64_t, int64_t>{16, 64}, {12, 32}}) {
    const int64_t heads = shape.first, head_dim = shape.second, hidden = heads * head_dim;
    if (!modelpool::CanPackedSelfAttention(options.device(), at::kHalf, heads, head_dim)) {
      std::fprintf(stderr, "the packed attention kernel does not run on this device\n");
      return 1;
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    // Lengths past a multiple of 128 (260) cost flash attention a tile of keys more.
    for (const int64_t length : {8, 16, 32, 48, 64, 96, 128, 192, 256, 260, 384, 512}) {
      const int64_t rows = kBudget / length, tokens = rows * length;
      const at::Tensor qkv = at::randn({tokens, 3 * hidden}, options);
      const at::Tensor starts = modelpool::EvenStarts(rows, length, options.device());
      const at::Tensor row_ids =
          at::arange(rows, starts.options()).repeat_interleave(length).contiguous();
      const at::Tensor packed = qkv.view({tokens, 3, heads, head_dim});
      const double ours = modelpool::bench::MicrosecondsPerCall(
          [&] { (void)modelpool::PackedSelfAttention(qkv, starts, row_ids, heads, scale); });
      const double flash = modelpool::bench::MicrosecondsPerCall([&] {
        (void)modelpool::FlashAttention(packed.select(1, 0), packed.select(1, 1),
                                        packed.select(1, 2), starts, length, starts, length, scale);
      });
      const double flops = 4.0 * hidden * static_cast<double>(rows * length * length);
      const double bytes = 8.0 * hidden * static_cast<double>(tokens);
      std::printf(
          "%s\n",
          absl::StrFormat(
              "{\"what\": \"packed_attention\", \"head_dim\": %d, \"length\": %d, \"rows\": %d, "
              "\"ours_us\": %.1f, \"flash_us\": %.1f, \"ours_tflop_s\": %.0f, "
              "\"flash_tflop_s\": %.0f, \"ours_tb_s\": %.2f, "
              "\"flash_tb_s\": %.2f, \"ratio\": %.2f}",
              head_dim, length, rows, ours, flash, flops / ours / 1e6, flops / flash / 1e6,
              bytes / ours / 1e6, bytes / flash / 1e6, flash / ours)
              .c_str());
    }
  }
  return 0;
}
