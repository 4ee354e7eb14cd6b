#ifndef MODELPOOL_TESTS_MODELS_FLOAT32_ATTENTION_H_
#define MODELPOOL_TESTS_MODELS_FLOAT32_ATTENTION_H_

// Attention in float32, against which the GPU tests hold our attention kernels.

#include "ATen/ATen.h"

namespace modelpool {

// Attention in float32 and what bounds its rounding: `out` = Σ p_t v_t and `spread` = Σ p_t |v_t|.
struct Expected {
  at::Tensor out, spread;
};

inline Expected Attend(const at::Tensor& scores, const at::Tensor& values) {
  const at::Tensor p = at::softmax(scores, -1);
  return {at::matmul(p, values), at::matmul(p, values.abs())};
}

// How far `got` strays past its tolerance around `expected` (same shapes, float32): 1% of the
// output (which is rounded to 8 or 11 bits), and `spread_share` of its spread, for attention
// that rounds its scores or probabilities to half precision: matrix products in half
// precision, flash attention and our packed kernel, which round the probabilities before the
// second product. The decoder's kernels keep both in float32 (share 0), so a key dropped,
// doubled or misplaced (about 1 / length of an output) stands out.
inline double Excess(const at::Tensor& got, const Expected& expected, double spread_share) {
  return ((got - expected.out).abs() - expected.out.abs() * 1e-2 - expected.spread * spread_share)
      .max()
      .item<double>();
}
constexpr double kMaxExcess = 1e-4;
constexpr double kHalfPrecisionShare = 2e-2;

}  // namespace modelpool

#endif  // MODELPOOL_TESTS_MODELS_FLOAT32_ATTENTION_H_
