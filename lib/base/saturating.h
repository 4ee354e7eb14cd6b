#ifndef MODELPOOL_LIB_BASE_SATURATING_H_
#define MODELPOOL_LIB_BASE_SATURATING_H_

#include <cstdint>
#include <initializer_list>
#include <limits>

namespace modelpool {

// Sizes computed from counts that a user or a file gave (limits, dimensions): for
// non-negative operands the result stops at `kSaturated` instead of wrapping around, so that a
// huge count reads as too large, never as small. `kSaturated` then means "does not fit".
inline constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();

// The most bytes a model instance may be planned at (1 PiB): far beyond any device, and far
// below where arithmetic on it (margins, sums over instances) could overflow. Managers refuse
// limits that would plan an instance above it, naming the limits.
inline constexpr int64_t kMaxInstanceBytes = int64_t{1} << 50;

inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? kSaturated : sum;
}

inline int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? kSaturated : product;
}

inline int64_t SaturatingProduct(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (const int64_t factor : factors) product = SaturatingMul(product, factor);
  return product;
}

inline int64_t SaturatingSum(std::initializer_list<int64_t> terms) {
  int64_t sum = 0;
  for (const int64_t term : terms) sum = SaturatingAdd(sum, term);
  return sum;
}

}  // namespace modelpool

#endif  // MODELPOOL_LIB_BASE_SATURATING_H_
