#ifndef MODELPOOL_BENCHMARKS_KERNEL_PROFILE_H_
#define MODELPOOL_BENCHMARKS_KERNEL_PROFILE_H_

// Kernel time against wall time of one call, through libtorch's Kineto profiler (PyTorch 2
// with CUDA): what embed_profile and generate_profile print.

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"

namespace modelpool::bench {

struct KernelProfile {
  double wall_s = 0;
  double kernel_s = 0;
  int64_t kernels = 0;
  // Per kernel name (cut at 90 characters): seconds and launches, most time first.
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> ranked;
};

// Runs `fn` once under the profiler. `trace`: where to save a Chrome trace, or empty.
template <typename Fn>
KernelProfile ProfileKernels(Fn&& fn, const std::string& trace = "") {
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const prof::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<ActivityType> activities = {ActivityType::CPU, ActivityType::CUDA};
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  const auto start = std::chrono::steady_clock::now();
  fn();
  KernelProfile profile;
  profile.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::unique_ptr<prof::ProfilerResult> result = prof::disableProfiler();
  std::map<std::string, std::pair<double, int64_t>> by_kernel;
  for (const auto& event : result->events()) {
    if (event.deviceType() != c10::DeviceType::CUDA) continue;
    const double s = static_cast<double>(event.durationNs()) * 1e-9;
    profile.kernel_s += s;
    ++profile.kernels;
    auto& [seconds, count] = by_kernel[event.name().substr(0, 90)];
    seconds += s;
    ++count;
  }
  profile.ranked.assign(by_kernel.begin(), by_kernel.end());
  std::sort(profile.ranked.begin(), profile.ranked.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  if (!trace.empty()) result->save(trace);
  return profile;
}

// The `top` kernels that take most time: share, milliseconds, launches, name.
inline void PrintTopKernels(const KernelProfile& profile, size_t top = 15) {
  for (size_t i = 0; i < std::min(profile.ranked.size(), top); ++i) {
    const auto& [name, entry] = profile.ranked[i];
    absl::PrintF("%6.1f%% %8.2f ms %6d x  %s\n", 100 * entry.first / profile.kernel_s,
                 entry.first * 1e3, entry.second, name);
  }
}

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_KERNEL_PROFILE_H_
