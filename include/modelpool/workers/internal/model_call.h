#ifndef MODELPOOL_WORKERS_INTERNAL_MODEL_CALL_H_
#define MODELPOOL_WORKERS_INTERNAL_MODEL_CALL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/device.h"
#include "modelpool/base/status.h"
#include "modelpool/workers/fault_injector.h"

namespace modelpool::workers_internal {

class ModelBackend;

// Whether `status` says that a device ran out of memory: `ResourceExhausted`, or libtorch's
// CUDA out-of-memory exception turned `Internal`, saying "out of memory"; not a budget that has
// no room for a load.
bool IsOutOfMemory(const absl::Status& status);
template <typename T>
bool IsOutOfMemory(const absl::StatusOr<T>& result) {
  return IsOutOfMemory(result.status());
}

// What a model's calls met with, for `ModelStats`. Shared by the calls of one model.
struct CallCounters {
  std::atomic<uint64_t> out_of_memory{0};  // calls that ran out of device memory
  std::atomic<uint64_t> split_retries{0};  // retries of part of a batch after one did
};

// ModelCall
//
// How a request's code calls its model on a worker. Each call goes through the pool's fault
// injector (if it has one) and has its exceptions turned into `Internal`; after an
// out-of-memory error the device's cached memory can be freed so that a smaller batch may fit
// (see Note [Out of memory in a batch] in lib/workers/oom_split.h). It owns what it refers to:
// a hung request keeps running after the pool has given up on it.
class ModelCall {
 public:
  ModelCall(std::string model, Device device, std::shared_ptr<FaultInjector> faults,
            std::shared_ptr<ModelBackend> backend, std::shared_ptr<CallCounters> counters,
            bool split_on_oom);

  const std::string& model() const { return model_; }
  const Device& device() const { return device_; }
  // Whether a batch that ran out of memory is split and retried.
  bool split_on_oom() const { return split_on_oom_; }

  // ModelCall::Run()
  //
  // Runs `fn` (which calls the model once and returns `absl::Status` or `absl::StatusOr<T>`) as
  // the fault injector says: it may fail as out of memory instead, throw, or stall first.
  template <typename Fn>
  auto Run(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    using Result = decltype(fn());
    if (faults_ != nullptr) {
      if (std::optional<FaultInjector::Injected> fault = faults_->OnCall(model_, device_)) {
        if (fault->kind == FaultKind::kOutOfMemory) return Counted(Result(InjectedOutOfMemory()));
        if (fault->kind == FaultKind::kThrow) {
          return CallCatching(what, []() -> Result {
            throw std::runtime_error("injected fault: the model call threw");
          });
        }
        if (fault->kind == FaultKind::kStall) faults_->Stall(fault->stall);
      }
    }
    return Counted(CallCatching(what, std::forward<Fn>(fn)));
  }

  // ModelCall::RunWhole()
  //
  // `Run()` for a request whose rows cannot be split (the pool sees it as one): after an
  // out-of-memory error it frees the device's cached memory and tries once more, as a split
  // down to one row would.
  template <typename Fn>
  auto RunWhole(absl::string_view what, Fn&& fn) -> decltype(fn()) {
    auto result = Run(what, fn);
    if (!split_on_oom_ || !IsOutOfMemory(result)) return result;
    ReleaseCachedMemory();
    counters_->split_retries.fetch_add(1, std::memory_order_relaxed);
    return Run(what, fn);
  }

  // Hands the memory the framework caches on the device back to the driver (none without a
  // backend).
  void ReleaseCachedMemory();
  CallCounters& counters() { return *counters_; }

 private:
  template <typename Result>
  Result Counted(Result result) {
    if (IsOutOfMemory(result)) {
      counters_->out_of_memory.fetch_add(1, std::memory_order_relaxed);
    }
    return result;
  }
  absl::Status InjectedOutOfMemory() const;

  std::string model_;
  Device device_;
  std::shared_ptr<FaultInjector> faults_;
  std::shared_ptr<ModelBackend> backend_;
  std::shared_ptr<CallCounters> counters_;
  bool split_on_oom_ = true;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_WORKERS_INTERNAL_MODEL_CALL_H_
