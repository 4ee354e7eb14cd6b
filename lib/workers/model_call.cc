#include "modelpool/workers/internal/model_call.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "modelpool/workers/internal/model_backend.h"

namespace modelpool::workers_internal {

bool IsOutOfMemory(const absl::Status& status) {
  // libtorch's out-of-memory errors are exceptions ("CUDA out of memory. Tried to allocate...",
  // "CUDA error: out of memory"), which `CallCatching` made `Internal`.
  return (status.code() == absl::StatusCode::kResourceExhausted ||
          status.code() == absl::StatusCode::kInternal) &&
         absl::StrContains(absl::AsciiStrToLower(status.message()), "out of memory");
}

ModelCall::ModelCall(std::string model, Device device, std::shared_ptr<FaultInjector> faults,
                     std::shared_ptr<ModelBackend> backend, std::shared_ptr<CallCounters> counters,
                     bool split_on_oom)
    : model_(std::move(model)),
      device_(device),
      faults_(std::move(faults)),
      backend_(std::move(backend)),
      counters_(std::move(counters)),
      split_on_oom_(split_on_oom) {}

void ModelCall::ReleaseCachedMemory() {
  if (backend_ != nullptr) backend_->ReleaseCachedMemory(device_);
}

absl::Status ModelCall::InjectedOutOfMemory() const {
  return absl::ResourceExhaustedError(absl::StrCat("CUDA out of memory (injected fault) running ",
                                                   model_, " on ", device_.ToString()));
}

}  // namespace modelpool::workers_internal
