// Requests joined together: a worker that takes a joinable request runs queued requests of the
// same model and key with it, in one call.
#include <algorithm>
#include <typeinfo>

#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"

namespace modelpool::workers_internal {

// Note [Joined requests]
// Many callers sending a text each would otherwise cost a forward pass each; joined, they cost
// about one. A worker that takes a request with a `JoinableTask` (its leader) takes with it the
// queued requests of the same model whose tasks have the same type and key, in the order it
// would take them itself (by class and rank), as long as their tokens, added to the leader's,
// stay within the model's `max_batch_tokens` (the leader alone may exceed it); the first that
// does not fit ends the batch, so that none overtakes a better ranked one. A request whose
// deadline has passed never joins (the timer expires it), nor does one pinned to another worker.
//
// When none is queued, the worker waits up to `batch_window` (real time) for some to come, woken
// by each request of its model that is queued, and starts as soon as the batch is full: requests
// sent at about the same moment then run together. When some were queued, the pool is busy, and
// requests keep queueing while the batch runs: the worker starts at once, as waiting would only
// add to every caller's latency. Joined requests enter kRunning when they join (so
// `Cancel()` leaves them be), run in one call of the leader's `RunTogether()`, and end each
// with its own outcome.
//
// The scan is bounded (`kMostScanned` queued requests looked at per take), so that a long
// queue of another key does not hold the lock.
constexpr int kMostScanned = 4096;

void Scheduler::Join(int w, std::vector<QueuedJob*>& batch) {
  const Model& model = M(batch.front()->model);
  if (settings_.batch_window <= absl::ZeroDuration()) return;
  int64_t tokens = batch.front()->tokens;
  const bool full = TakeJoiners(w, batch, tokens, model.max_batch_tokens);
  if (full || batch.size() > 1 || stopping_) return;
  const absl::Time until = absl::Now() + settings_.batch_window;
  W(w).joining = true;
  bool more_fit = true;
  while (more_fit && absl::Now() < until && !stopping_) {
    mu_.WaitWithDeadline(worker_cvs_[w].get(), until);
    W(w).wake_pending = false;
    more_fit = !TakeJoiners(w, batch, tokens, model.max_batch_tokens);
  }
  W(w).joining = false;
}

void Scheduler::WakeJoining(const QueuedJob& job) {
  for (WorkerSlot& w : workers_) {
    if (w.joining && w.model == job.model) Wake(w.id);
  }
}

bool Scheduler::TakeJoiners(int w, std::vector<QueuedJob*>& batch, int64_t& tokens, int64_t limit) {
  const QueuedJob& leader = *batch.front();
  const JoinableTask& kind = *leader.task.joinable;
  const absl::Time now = clock_->Now();
  std::vector<QueuedJob*> joining;
  bool full = false;
  int scanned = 0;
  queue_.ForEachByRank(leader.model, W(w).id, [&](QueuedJob* job) {
    if (++scanned > kMostScanned) return false;
    const JoinableTask* task = job->task.joinable.get();
    if (task == nullptr || typeid(*task) != typeid(kind) || task->key() != kind.key() ||
        job->deadline <= now) {
      return true;
    }
    if (tokens + job->tokens > limit) {
      full = true;
      return false;
    }
    tokens += job->tokens;
    joining.push_back(job);
    return true;
  });
  for (QueuedJob* job : joining) {
    queue_.Remove(job);
    memory_waiters_.erase(std::remove(memory_waiters_.begin(), memory_waiters_.end(), job),
                          memory_waiters_.end());
    job->worker = W(w).id;
    job->device = devices_[W(w).slot];
    SetJobState(job, JobState::kRunning);
    ++M(job->model).stats.running;
    batch.push_back(job);
  }
  return full || tokens >= limit;
}

JoinedRun Scheduler::RunBatch(const std::vector<QueuedJob*>& batch, void* instance, int worker,
                              const Device& device) {
  const QueuedJob& leader = *batch.front();
  const absl::Time start = absl::Now();
  JoinedRun run;
  int64_t rows = 0;
  if (leader.task.joinable != nullptr) {
    std::vector<JoinableTask*> tasks;
    for (const QueuedJob* job : batch) {
      tasks.push_back(job->task.joinable.get());
      rows += job->task.joinable->rows();
    }
    run = leader.task.joinable->RunTogether(instance, tasks);
  } else {
    run.statuses.push_back(leader.task.run(instance));
    rows = 1;
  }
  BatchInfo info;
  info.model_id = leader.model;
  info.device = device;
  info.worker = worker;
  info.requests = static_cast<int>(batch.size());
  info.rows = rows;
  info.duration = absl::Now() - start;
  info.tokens = run.tokens;
  if (info.tokens < 0) {
    info.tokens = 0;
    for (const QueuedJob* job : batch) info.tokens += job->tokens;
  }
  listeners_.ForEach([&](WorkerPoolListener& listener) { listener.OnBatchRun(info); });
  return run;
}

}  // namespace modelpool::workers_internal
