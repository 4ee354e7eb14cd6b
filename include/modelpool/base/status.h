#ifndef MODELPOOL_BASE_STATUS_H_
#define MODELPOOL_BASE_STATUS_H_

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// MODELPOOL_RETURN_IF_ERROR(expr)
//
// Evaluates `expr`, an `absl::Status`, and returns it from the enclosing function if not OK.
#define MODELPOOL_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::absl::Status modelpool_status_ = (expr);             \
    if (!modelpool_status_.ok()) return modelpool_status_; \
  } while (false)

// MODELPOOL_ASSIGN_OR_RETURN(lhs, expr)
//
// Evaluates `expr`, an `absl::StatusOr<T>`; returns its status if not OK, else moves its value
// into `lhs`, which may be a declaration: `MODELPOOL_ASSIGN_OR_RETURN(auto x, MakeX());`
#define MODELPOOL_ASSIGN_OR_RETURN(lhs, expr) \
  MODELPOOL_ASSIGN_OR_RETURN_IMPL_(MODELPOOL_CONCAT_(modelpool_statusor_, __LINE__), lhs, expr)

#define MODELPOOL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = std::move(statusor).value()

#define MODELPOOL_CONCAT_(a, b) MODELPOOL_CONCAT_INNER_(a, b)
#define MODELPOOL_CONCAT_INNER_(a, b) a##b

namespace modelpool {

// Note [Statuses that cross threads]
// Copies of an error `absl::Status` share one reference-counted representation. When one copy
// goes to another thread (a request's result) while this thread keeps another (to count the
// outcome), the two threads touch one count; Abseil's own code does that safely, but a
// ThreadSanitizer build cannot see it in a distribution's uninstrumented Abseil and reports a
// race. `UnsharedCopy` gives a copy with a representation of its own.
inline absl::Status UnsharedCopy(const absl::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(status.code(), std::string(status.message()));
}

// Runs `fn` and turns an escaping exception into an `Internal` status that keeps its message,
// prefixed with `what`. `fn` returns `absl::Status` or `absl::StatusOr<T>`.
template <typename Fn>
auto CallCatching(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + ": " + e.what());
  } catch (...) {
    return absl::InternalError(std::string(what) + ": unknown exception");
  }
}

}  // namespace modelpool

#endif  // MODELPOOL_BASE_STATUS_H_
