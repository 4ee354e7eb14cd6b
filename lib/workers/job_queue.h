#ifndef MODELPOOL_LIB_WORKERS_JOB_QUEUE_H_
#define MODELPOOL_LIB_WORKERS_JOB_QUEUE_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/workers/internal/model_backend.h"
#include "modelpool/workers/job.h"

namespace modelpool::workers_internal {

// A request from its submission to its end, owned by the scheduler. The fields that order it in
// a queue (model, classes, deadline, seq, pin) do not change while it is queued.
struct QueuedJob {
  JobId id = 0;
  std::string model;
  Priority priority_class = Priority::kNormal;
  int priority = 0;
  absl::Time deadline = absl::InfiniteFuture();
  int64_t tokens = 1;
  uint64_t seq = 0;      // order of first queueing
  absl::Time queued_at;  // when first queued: aging counts from here
  int pin = -1;          // the one worker that may take it (round robin), -1 for any
  JobState state = JobState::kPending;
  std::array<absl::Time, kJobStates> entered;
  Task task;
  int worker = -1;
  std::optional<Device> device;
  absl::Status status;  // the outcome, once final
  // Since when its model could not be loaded for lack of memory; InfiniteFuture if not.
  absl::Time memory_wait_since = absl::InfiniteFuture();
  bool cancel_requested = false;
  // How long it may run before it is given up on (see Note [Hung calls] in scheduler.h).
  absl::Duration execution_timeout = absl::InfiniteDuration();
  bool fell_back = false;  // handed to its model's fallback after running out of memory
};

// Ranks within a class: higher `priority`, then the earlier deadline, then the earlier job.
bool RanksBefore(const QueuedJob& a, const QueuedJob& b);

// JobQueue
//
// The pool-wide queue: per model (and per pinned worker), ordered by class and rank and by age;
// and over all models by age and by deadline. Not thread-safe: the scheduler's lock guards it.
class JobQueue {
 public:
  void Push(QueuedJob* job);
  void Remove(QueuedJob* job);

  bool empty() const { return all_.empty(); }
  int size() const { return static_cast<int>(all_.size()); }

  // Calls `fn(model)` for each model with queued jobs.
  template <typename Fn>
  void ForEachModel(Fn fn) const {
    for (const auto& [model, queue] : models_) fn(model);
  }

  // The first of `model`'s jobs that `worker` may take (pinned to it or to no one): by class
  // and rank, and the oldest. Null if none. `worker` -1 takes any job of the model.
  QueuedJob* Best(const std::string& model, int worker) const;
  QueuedJob* Oldest(const std::string& model, int worker) const;

  // Calls `fn(job)` on `model`'s jobs that `worker` may take (pinned to it or to no one), by
  // class and rank, until `fn` returns false.
  template <typename Fn>
  void ForEachByRank(const std::string& model, int worker, Fn fn) const {
    auto it = models_.find(model);
    if (it == models_.end()) return;
    static const std::set<QueuedJob*, ByRank> kNone;
    auto bucket = [&](int pin) -> const std::set<QueuedJob*, ByRank>& {
      auto b = it->second.buckets.find(pin);
      return b == it->second.buckets.end() ? kNone : b->second.by_rank;
    };
    const auto& shared = bucket(-1);
    const auto& own = worker >= 0 ? bucket(worker) : kNone;
    auto a = shared.begin(), b = own.begin();
    while (a != shared.end() || b != own.end()) {
      const bool take_a = b == own.end() || (a != shared.end() && ByRank()(*a, *b));
      if (!fn(take_a ? *a++ : *b++)) return;
    }
  }

  // The oldest queued job whose seq is above `seq`.
  QueuedJob* FirstAfter(uint64_t seq) const;
  // The queued job with the earliest finite deadline.
  QueuedJob* EarliestDeadline() const;

  int Count(const std::string& model) const;
  int64_t Tokens(const std::string& model) const;
  int CountPinned(int worker) const;

  // Jobs of `model` pinned to `worker` may go to any worker now.
  void Unpin(const std::string& model, int worker);

  // Every queued job, oldest first.
  std::vector<QueuedJob*> All() const { return {all_.begin(), all_.end()}; }

 private:
  struct ByRank {
    bool operator()(const QueuedJob* a, const QueuedJob* b) const;
  };
  struct BySeq {
    bool operator()(const QueuedJob* a, const QueuedJob* b) const { return a->seq < b->seq; }
  };
  struct ByDeadline {
    bool operator()(const QueuedJob* a, const QueuedJob* b) const {
      return a->deadline != b->deadline ? a->deadline < b->deadline : a->seq < b->seq;
    }
  };
  struct Bucket {
    std::set<QueuedJob*, ByRank> by_rank;
    std::set<QueuedJob*, BySeq> by_seq;
  };
  struct ModelQueue {
    std::map<int, Bucket> buckets;  // by pin
    int count = 0;
    int64_t tokens = 0;
  };

  // Of the buckets `worker` may take from, the first job each `pick` gives.
  template <typename Pick, typename Before>
  QueuedJob* First(const std::string& model, int worker, Pick pick, Before before) const;

  std::map<std::string, ModelQueue> models_;
  std::set<QueuedJob*, BySeq> all_;
  std::set<QueuedJob*, ByDeadline> deadlines_;
  std::map<int, int> pinned_;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_JOB_QUEUE_H_
