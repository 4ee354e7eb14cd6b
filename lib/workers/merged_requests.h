#ifndef MODELPOOL_LIB_WORKERS_MERGED_REQUESTS_H_
#define MODELPOOL_LIB_WORKERS_MERGED_REQUESTS_H_

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/status.h"
#include "modelpool/workers/job.h"

namespace modelpool::workers_internal {

// MergedRequests
//
// The requests in flight, by content (`Key`, with its `Hash` and `Eq`), so that a request
// identical to one in flight joins it instead of running again: it gets that job's id and a copy
// of its result. A request is in flight from `Join()` (which made it the leader) until its
// `Finish()`. Thread-safe.
//
// Example:
//   std::shared_ptr<Flight> lead;
//   if (auto joined = merged.Join(key, &lead)) return *std::move(joined);
//   ... submit; its ending calls merged.Finish(lead, result); then merged.SetId(lead, id) ...
template <typename Key, typename R, typename Hash, typename Eq>
class MergedRequests {
 public:
  class Flight {
   public:
    explicit Flight(Key key) : key_(std::move(key)), id_(id_promise_.get_future().share()) {}

   private:
    friend class MergedRequests;
    const Key key_;
    std::promise<JobId> id_promise_;
    const std::shared_future<JobId> id_;
    std::vector<std::promise<absl::StatusOr<R>>> followers_;  // guarded by the set's lock
  };

  // Copies a result for one follower (a deep copy where a plain one would share storage).
  using Copy = std::function<R(const R&)>;

  explicit MergedRequests(Copy copy) : copy_(std::move(copy)) {}

  // MergedRequests::Join()
  //
  // Joins the request in flight identical to `key`, returning its id (once its leader has set
  // it) and a future of a copy of its result; or, when there is none, makes this request the one
  // in flight for `key`, sets `*lead` and returns nullopt: the caller submits it, calls
  // `SetId()` and, when it ends, `Finish()`.
  std::optional<JobHandle<R>> Join(const Key& key, std::shared_ptr<Flight>* lead) {
    std::shared_ptr<Flight> flight;
    JobHandle<R> handle;
    {
      MutexLock lock(&mu_);
      auto it = flights_.find(key);
      if (it == flights_.end()) {
        *lead = std::make_shared<Flight>(key);
        flights_.emplace(key, *lead);
        return std::nullopt;
      }
      flight = it->second;
      flight->followers_.emplace_back();
      handle.result = flight->followers_.back().get_future();
    }
    handle.id = flight->id_.get();
    return handle;
  }

  // The leader's job id, for those who join it.
  static void SetId(const std::shared_ptr<Flight>& flight, JobId id) {
    flight->id_promise_.set_value(id);
  }

  // The leader's request ended with `result`: nobody joins it from now on, and each follower gets
  // a copy of the result.
  void Finish(const std::shared_ptr<Flight>& flight, const absl::StatusOr<R>& result) {
    std::vector<std::promise<absl::StatusOr<R>>> followers;
    {
      MutexLock lock(&mu_);
      auto it = flights_.find(flight->key_);
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
      followers.swap(flight->followers_);
    }
    for (std::promise<absl::StatusOr<R>>& follower : followers) {
      if (result.ok()) {
        follower.set_value(copy_(*result));
      } else {
        follower.set_value(UnsharedCopy(result.status()));  // Note [Statuses that cross threads]
      }
    }
  }

  // Requests in flight now.
  size_t in_flight() const {
    MutexLock lock(&mu_);
    return flights_.size();
  }

 private:
  const Copy copy_;
  mutable Mutex mu_;
  std::unordered_map<Key, std::shared_ptr<Flight>, Hash, Eq> flights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_MERGED_REQUESTS_H_
