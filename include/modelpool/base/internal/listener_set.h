#ifndef MODELPOOL_BASE_INTERNAL_LISTENER_SET_H_
#define MODELPOOL_BASE_INTERNAL_LISTENER_SET_H_

#include <algorithm>
#include <vector>

#include "modelpool/base/internal/mutex.h"

namespace modelpool::base_internal {

// ListenerSet
//
// Listeners registered by pointer and called in turn. The set's own lock is held while they are
// called, so `Remove()` returns only once no call to that listener is in progress, and the
// listener may then be destroyed. The notifier must call `ForEach()` without holding a lock that
// a listener takes, and listeners must not add or remove listeners of the same set. Thread-safe.
template <typename Listener>
class ListenerSet {
 public:
  void Add(Listener* listener) {
    MutexLock lock(&mu_);
    listeners_.push_back(listener);
  }

  void Remove(Listener* listener) {
    MutexLock lock(&mu_);
    listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
  }

  template <typename Fn>
  void ForEach(Fn fn) {
    MutexLock lock(&mu_);
    for (Listener* listener : listeners_) fn(*listener);
  }

 private:
  Mutex mu_;
  std::vector<Listener*> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool::base_internal

#endif  // MODELPOOL_BASE_INTERNAL_LISTENER_SET_H_
