#ifndef MODELPOOL_TESTS_TESTING_EVENTUALLY_H_
#define MODELPOOL_TESTS_TESTING_EVENTUALLY_H_

#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace modelpool::testing {

// Whether `predicate()` becomes true within `timeout`, checked every 200 microseconds. For
// waiting on another thread's progress (a waiter queued, a worker busy) without sleeping a
// fixed time.
template <typename Predicate>
bool Eventually(Predicate predicate, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_EVENTUALLY_H_
