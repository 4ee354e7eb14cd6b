#include "lib/workers/latency_tracker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace modelpool::workers_internal {
namespace {

absl::Duration P99(std::vector<absl::Duration> values) {
  if (values.empty()) return absl::ZeroDuration();
  const size_t rank = (values.size() * 99 + 99) / 100 - 1;  // the ceiling of 99%, from 0
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank),
                   values.end());
  return values[rank];
}

}  // namespace

void LatencyTracker::Add(absl::Duration latency, int window) {
  const size_t size = static_cast<size_t>(std::max(1, window));
  if (recent_.size() < size) {
    recent_.push_back(latency);
    if (recent_.size() == size && !baseline_) baseline_ = P99(recent_);
    return;
  }
  recent_[next_] = latency;
  next_ = (next_ + 1) % recent_.size();
}

absl::Duration LatencyTracker::RecentP99() const { return P99(recent_); }

std::string LatencyTracker::SlowReason(double factor) const {
  if (factor <= 0 || !baseline_) return "";
  const absl::Duration p99 = RecentP99();
  const absl::Duration bound = std::max(*baseline_ * factor, kSignificant);
  if (p99 <= bound) return "";
  return absl::StrCat(
      "its recent p99 latency, ", absl::FormatDuration(p99), ", is ",
      absl::StrFormat("%.1f", absl::FDivDuration(p99, std::max(*baseline_, absl::Microseconds(1)))),
      "x its baseline of ", absl::FormatDuration(*baseline_));
}

}  // namespace modelpool::workers_internal
