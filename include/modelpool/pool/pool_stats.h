#ifndef MODELPOOL_POOL_POOL_STATS_H_
#define MODELPOOL_POOL_POOL_STATS_H_

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace modelpool {

// A snapshot of a `ModelPool`'s counters.
struct PoolStats {
  int available = 0;      // idle instances, ready to lease
  int in_use = 0;         // instances leased out, or being created for an acquirer
  int total = 0;          // live instances, counting those being created
  int max_instances = 0;  // the current limit on `total`
  int waiting = 0;        // acquirers blocked in `Acquire()`
  uint64_t created = 0;   // instances the factory made
  uint64_t destroyed = 0;
  uint64_t failed_creations = 0;
  uint64_t timeouts = 0;  // acquires that waited and gave up (`DeadlineExceeded`), not tries
  // How long `Acquire()` waited before it had an instance or a slot to create one in.
  absl::Duration acquire_wait_p50;
  absl::Duration acquire_wait_p99;

  std::string ToString() const {
    return absl::StrFormat(
        "available=%d in_use=%d total=%d max=%d waiting=%d created=%d destroyed=%d "
        "failed=%d timeouts=%d wait_p50=%s wait_p99=%s",
        available, in_use, total, max_instances, waiting, created, destroyed, failed_creations,
        timeouts, absl::FormatDuration(acquire_wait_p50), absl::FormatDuration(acquire_wait_p99));
  }
};

namespace pool_internal {

// WaitHistogram
//
// Counts durations in log-linear buckets (four per power of two nanoseconds, so a percentile
// is within 19% of the true value) with no allocation. Not thread-safe: the pool's lock guards it.
class WaitHistogram {
 public:
  void Record(absl::Duration wait) {
    const int64_t ns = absl::ToInt64Nanoseconds(wait);
    ++counts_[BucketOf(ns < 1 ? 1 : static_cast<uint64_t>(ns))];
    ++total_;
  }

  // The upper edge of the bucket that holds quantile `q` (0..1); zero before any record.
  absl::Duration Percentile(double q) const {
    if (total_ == 0) return absl::ZeroDuration();
    // Nearest rank: the smallest value with at least q of all values at or below it.
    const double wanted = std::ceil(q * static_cast<double>(total_));
    const uint64_t rank = wanted < 1 ? 1 : static_cast<uint64_t>(wanted);
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank) return absl::Nanoseconds(UpperEdge(b));
    }
    return absl::Nanoseconds(UpperEdge(kBuckets - 1));
  }

 private:
  static constexpr int kSubBuckets = 4;
  static constexpr int kBuckets = 64 * kSubBuckets;

  static int BucketOf(uint64_t ns) {
    const int exponent = 63 - std::countl_zero(ns);
    const int sub = exponent >= 2 ? static_cast<int>((ns >> (exponent - 2)) & 3) : 0;
    return exponent * kSubBuckets + sub;
  }
  static int64_t UpperEdge(int bucket) {
    const int exponent = bucket / kSubBuckets, sub = bucket % kSubBuckets;
    if (exponent < 2) return int64_t{1} << (exponent + 1);
    if (exponent >= 62) return INT64_MAX;
    return (int64_t{1} << exponent) + (int64_t{sub + 1} << (exponent - 2));
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
};

}  // namespace pool_internal
}  // namespace modelpool

#endif  // MODELPOOL_POOL_POOL_STATS_H_
