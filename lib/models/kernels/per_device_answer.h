#ifndef MODELPOOL_LIB_MODELS_KERNELS_PER_DEVICE_ANSWER_H_
#define MODELPOOL_LIB_MODELS_KERNELS_PER_DEVICE_ANSWER_H_

// Plain C++, for the kernels and their callers alike.

#include <array>
#include <atomic>
#include <optional>

namespace modelpool::kernels {

// PerDeviceAnswer
//
// A yes or no about a CUDA device that does not change while the process runs (what it can
// run), asked of `ask` once a device and remembered. `ask` may answer nullopt where it could
// not tell (a CUDA query failed): that is a no this time, not remembered, so the next call asks
// again. Thread-safe: two threads asking at once may both ask, and get the same answer.
// Devices past the 64th get no.
class PerDeviceAnswer {
 public:
  explicit PerDeviceAnswer(std::optional<bool> (*ask)(int device)) : ask_(ask) {}

  bool For(int device) {
    if (device < 0 || device >= kDevices) return false;
    int state = known_[device].load(std::memory_order_acquire);
    if (state == kUnknown) {
      const std::optional<bool> answer = ask_(device);
      if (!answer.has_value()) return false;
      state = *answer ? kYes : kNo;
      known_[device].store(state, std::memory_order_release);
    }
    return state == kYes;
  }

 private:
  static constexpr int kDevices = 64;
  static constexpr int kUnknown = 0, kYes = 1, kNo = 2;
  std::optional<bool> (*ask_)(int device);
  std::array<std::atomic<int>, kDevices> known_{};
};

}  // namespace modelpool::kernels

#endif  // MODELPOOL_LIB_MODELS_KERNELS_PER_DEVICE_ANSWER_H_
