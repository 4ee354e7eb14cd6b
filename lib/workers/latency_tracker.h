#ifndef MODELPOOL_LIB_WORKERS_LATENCY_TRACKER_H_
#define MODELPOOL_LIB_WORKERS_LATENCY_TRACKER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace modelpool::workers_internal {

// LatencyTracker
//
// A model's request latencies: its baseline (the p99 of its first `window` requests) and the
// p99 of its last `window`, to tell when it has become slow. Not thread-safe: the scheduler's
// lock guards it.
class LatencyTracker {
 public:
  void Add(absl::Duration latency, int window);
  // The p99 of the first full window; nullopt before it filled.
  std::optional<absl::Duration> baseline() const { return baseline_; }
  // The p99 of the most recent `window` latencies (fewer before it filled); zero if none.
  absl::Duration RecentP99() const;
  // Why the model counts as slow, or empty: its recent p99 is above `factor` times its baseline,
  // and above `kSignificant` (shorter latencies are mostly the host's noise).
  std::string SlowReason(double factor) const;

  static constexpr absl::Duration kSignificant = absl::Milliseconds(1);

 private:
  std::vector<absl::Duration> recent_;  // a ring of the last `window`
  size_t next_ = 0;
  std::optional<absl::Duration> baseline_;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_LATENCY_TRACKER_H_
