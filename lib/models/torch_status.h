#ifndef MODELPOOL_LIB_MODELS_TORCH_STATUS_H_
#define MODELPOOL_LIB_MODELS_TORCH_STATUS_H_

#include <c10/util/Exception.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/status.h"

namespace modelpool {

// CallTorch()
//
// `CallCatching()` for code that runs libtorch: running out of device memory becomes
// `ResourceExhausted`, other libtorch errors `Internal`, each with libtorch's message less its
// C++ backtrace, prefixed with `what`.
template <typename Fn>
auto CallTorch(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  return CallCatching(what, [&]() -> decltype(fn()) {
    try {
      return std::forward<Fn>(fn)();
    } catch (const c10::OutOfMemoryError& e) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": ", e.what_without_backtrace()));
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
    }
  });
}

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_TORCH_STATUS_H_
