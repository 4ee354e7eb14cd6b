#ifndef MODELPOOL_TESTS_TESTING_STATUS_H_
#define MODELPOOL_TESTS_TESTING_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace modelpool::testing {

// Whether the message of `status` contains `text`: errors must name their culprit.
inline bool Mentions(const absl::Status& status, absl::string_view text) {
  return status.message().find(text) != absl::string_view::npos;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_STATUS_H_
