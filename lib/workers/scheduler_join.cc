// Requests joined together: a worker that takes a joinable request runs queued requests of the
// same model and key with it, in one call.
#include <algorithm>
#include <atomic>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/status.h"

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

namespace {

// Note [Faults in joined calls]
// A joined call is a model call like any other: it goes through the fault injector, its
// exceptions become `Internal`, and when it runs out of device memory the cached memory is freed
// and the requests are split in two halves, each run on its own, down to single requests (a
// single request that still does not fit fails with the out-of-memory error). The execution
// timeout and the circuit breaker see the call as one (FinishRun). A request alone runs as its
// `Task::run` says (which may split its rows).
JoinedRun RunJoined(ModelCall& call, void* instance, absl::Span<JoinableTask* const> tasks,
                    absl::Span<const std::shared_ptr<const RunFn>> runs) {
  JoinedRun run;
  if (tasks.size() == 1) {
    run.statuses.push_back((*runs.front())(instance, call));
    run.ran.push_back(true);
    run.tokens = tasks.front()->ResultTokens();
    return run;
  }
  const absl::Status status = call.Run("running joined requests", [&]() -> absl::Status {
    run = tasks.front()->RunTogether(instance, tasks);
    for (const absl::Status& one : run.statuses) {
      if (IsOutOfMemory(one)) return UnsharedCopy(one);
    }
    return absl::OkStatus();
  });
  if (run.statuses.size() != tasks.size()) {  // a fault stopped the call before it ran
    run.statuses.clear();
    for (size_t i = 0; i < tasks.size(); ++i) run.statuses.push_back(UnsharedCopy(status));
    run.ran.assign(tasks.size(), false);
    run.tokens = -1;
  } else {
    run.ran.assign(tasks.size(), true);
  }
  if (!call.split_on_oom() || !IsOutOfMemory(status)) return run;
  call.ReleaseCachedMemory();
  call.counters().split_retries.fetch_add(1, std::memory_order_relaxed);
  const size_t half = tasks.size() / 2;
  JoinedRun first = RunJoined(call, instance, tasks.subspan(0, half), runs.subspan(0, half));
  JoinedRun second = RunJoined(call, instance, tasks.subspan(half), runs.subspan(half));
  for (size_t i = 0; i < second.statuses.size(); ++i) {
    first.statuses.push_back(std::move(second.statuses[i]));
    first.ran.push_back(second.ran[i]);
  }
  first.tokens = first.tokens < 0 || second.tokens < 0 ? -1 : first.tokens + second.tokens;
  return first;
}

}  // namespace

JoinedRun Scheduler::RunCall(Call& call, void* instance) {
  if (call.joinables.empty()) {
    JoinedRun run;
    run.statuses.push_back((*call.run)(instance, call.model_call));
    run.ran.push_back(true);
    return run;
  }
  std::vector<JoinableTask*> tasks;
  for (const auto& task : call.joinables) tasks.push_back(task.get());
  return RunJoined(call.model_call, instance, tasks, call.runs);
}

void Scheduler::EmitBatch(const std::string& model, int slot, int worker, int requests,
                          int64_t rows, int64_t tokens, absl::Duration duration) {
  if (listeners_.empty()) return;
  BatchInfo info;
  info.model_id = model;
  info.device = devices_[slot];
  info.worker = worker;
  info.requests = requests;
  info.rows = rows;
  info.tokens = tokens;
  info.duration = duration;
  Emit([info = std::move(info)](WorkerPoolListener& l) { l.OnBatchRun(info); });
}

}  // namespace modelpool::workers_internal
