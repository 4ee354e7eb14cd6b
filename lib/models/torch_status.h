#ifndef MODELPOOL_LIB_MODELS_TORCH_STATUS_H_
#define MODELPOOL_LIB_MODELS_TORCH_STATUS_H_

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "c10/util/Exception.h"

namespace modelpool {

// CallTorch()
//
// Runs `fn` (returning `absl::Status` or `absl::StatusOr<T>`) and turns an escaping exception
// into a status that keeps its message, prefixed with `what`. A `c10::Error` loses its C++
// backtrace (useless to a user, and long); a CUDA out-of-memory error becomes
// `ResourceExhausted`, any other exception `Internal`.
template <typename Fn>
auto CallTorch(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": unknown exception"));
  }
}

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_TORCH_STATUS_H_
