#ifndef MODELPOOL_BASE_DEVICE_H_
#define MODELPOOL_BASE_DEVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace modelpool {

// Device
//
// Where a model instance runs: the CPU or one CUDA GPU. A plain value type.
struct Device {
  enum class Kind { kCpu, kCuda };

  static Device Cpu() { return Device{Kind::kCpu, 0}; }
  static Device Cuda(int index) { return Device{Kind::kCuda, index}; }

  // Parses "cpu", "cuda" (cuda:0) or "cuda:N". Fails with `InvalidArgument` otherwise.
  static absl::StatusOr<Device> Parse(absl::string_view text);
  // Parses a comma-separated list such as "cuda:0,cuda:1"; empty entries are an error.
  static absl::StatusOr<std::vector<Device>> ParseList(absl::string_view text);

  bool is_cuda() const { return kind == Kind::kCuda; }
  // "cpu" or "cuda:N".
  std::string ToString() const;

  friend bool operator==(const Device&, const Device&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Device& d) {
    return H::combine(std::move(h), d.kind, d.index);
  }

  Kind kind = Kind::kCpu;
  int index = 0;
};

}  // namespace modelpool

#endif  // MODELPOOL_BASE_DEVICE_H_
