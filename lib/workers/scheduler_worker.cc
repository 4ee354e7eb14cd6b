// The worker loop: take the job the policy chooses, get an instance of its model (the one held,
// an idle one, or a new load), run it, and hand the instance back when there is nothing more
// for it. See Note [Scheduler locking].
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool::workers_internal {

// Note [Waiting for memory]
// A load that does not fit (what is loaded is leased, or wanted by queued work that ranks as
// high) leaves its request queued and marks the model's device blocked. It is tried again when
// memory may have come free: an instance unloaded or handed back by one of this pool's workers
// (the memory epoch moves), or, for leases held outside the pool, `kMemoryRetry` later. The
// request fails with `ResourceExhausted`, naming what is loaded, after `load_timeout`.
constexpr absl::Duration kMemoryRetry = absl::Seconds(1);

// Note [Lingering]
// A worker that runs out of work keeps its instance for `kLinger` (real time) before it hands
// it back: a request that follows at once then starts without a lease handed back and taken
// again (which doubled the dispatch latency). The instance is leased meanwhile, so not evicted;
// a load that needed it is retried when it is handed back (the memory epoch moves), and a
// request for its model goes to this worker (`WakeFor`, `BetterPlacedElsewhere`).
constexpr absl::Duration kLinger = absl::Milliseconds(1);

void Scheduler::Serve(int w) {
  Held held;
  Endings endings;
  bool lingered = false;
  mu_.Lock();
  for (;;) {
    if (!endings.empty()) {
      mu_.Unlock();
      Flush(endings);
      mu_.Lock();
    }
    const Step step = Decide(w);
    if (step.kind == Step::kExit) break;
    if (step.kind == Step::kWait) {
      // With nothing to do, keep the instance a moment for the next request (see Note
      // [Lingering]), then give it back before sleeping, so that it may be evicted or unloaded;
      // then look again, as work may have come meanwhile.
      if (held != nullptr && !lingered) {
        lingered = true;
        WaitForWork(w, absl::Now() + kLinger);
      } else if (held != nullptr) {
        ReleaseHeld(w, held);
      } else {
        WaitForWork(w, absl::InfiniteFuture());
      }
      continue;
    }
    lingered = false;
    if (EnsureInstance(w, step.job, held, endings)) RunJob(w, step.job, held, endings);
  }
  if (held != nullptr) ReleaseHeld(w, held);
  SetState(w, WorkerState::kStopped);
  mu_.Unlock();
  Flush(endings);
}

Scheduler::Step Scheduler::Decide(int w) {
  if (stopping_ && absl::Now() >= drain_deadline_) return {Step::kExit};
  to_wake_.clear();
  QueuedJob* job = policy_->Choose(*this, w);
  for (int other : to_wake_) Wake(other);
  to_wake_.clear();
  if (job == nullptr) {
    // Work this worker may not take now (limits, placement, memory) may become its with time:
    // the timer must know when.
    if (!queue_.empty()) WakeTimerFor(NextEvent());
    return {stopping_ ? Step::kExit : Step::kWait};
  }
  queue_.Remove(job);
  job->worker = W(w).id;
  job->device = devices_[W(w).slot];
  W(w).job = job;
  return {Step::kRun, job};
}

bool Scheduler::EnsureInstance(int w, QueuedJob* job, Held& held, Endings& endings) {
  const std::string model = job->model;
  const int slot = W(w).slot;
  const Device device = devices_[slot];
  if (W(w).holding && W(w).model == model) return true;
  if (W(w).holding) ReleaseHeld(w, held);
  if (W(w).model != model) {
    if (!W(w).model.empty()) queue_.Unpin(W(w).model, W(w).id);
    W(w).model = model;
  }
  if (!W(w).held_model.empty() && W(w).held_model != model) {
    NoteSwitch(w);
    ++M(model).stats.switches;
  }
  W(w).held_model = model;
  std::shared_ptr<ModelBackend> backend = M(model).backend;
  if (IdleAvailable(M(model), slot)) {
    ++M(model).use[slot].acquiring;
    mu_.Unlock();
    absl::StatusOr<Held> idle = backend->AcquireIdleOn(device);
    mu_.Lock();
    --M(model).use[slot].acquiring;
    if (idle.ok()) {
      held = *std::move(idle);
      W(w).holding = true;
      return true;
    }
  }
  if (!MayLoad(M(model), slot)) {  // the idle instance went to another; no load may start here
    W(w).job = nullptr;
    Requeue(job, endings);
    return false;
  }
  SetJobState(job, JobState::kLoading);
  SetState(w, WorkerState::kLoading);
  device_loading_[slot] = true;
  M(model).use[slot].loading = true;
  const MemoryGovernor::ReserveOptions reserve = ReserveFor(job, model);
  mu_.Unlock();
  absl::StatusOr<Held> loaded = backend->LoadOn(device, reserve);
  mu_.Lock();
  device_loading_[slot] = false;
  M(model).use[slot].loading = false;
  WakeWaiting();  // another load may start on the device
  if (!loaded.ok()) {
    HandleLoadFailure(w, job, loaded.status(), endings);
    return false;
  }
  held = *std::move(loaded);
  W(w).holding = true;
  ++M(model).stats.loads;
  M(model).use[slot].memory_blocked = false;
  return true;
}

void Scheduler::HandleLoadFailure(int w, QueuedJob* job, const absl::Status& status,
                                  Endings& endings) {
  const std::string model = job->model;
  const int slot = W(w).slot;
  const Device device = devices_[slot];
  W(w).job = nullptr;
  // Requests waiting for this worker in particular may go to any other now.
  job->pin = -1;
  queue_.Unpin(model, W(w).id);
  // Out of memory for now, or never (more than the budget): only the first is worth a wait.
  const bool memory = status.code() == absl::StatusCode::kResourceExhausted &&
                      M(model).backend->NextInstanceBytes(device) <= governor_->BudgetBytes(device);
  if (memory) {
    M(model).use[slot].memory_blocked = true;
    M(model).use[slot].blocked_epoch = memory_epoch_;
    M(model).use[slot].blocked_until = clock_->Now() + kMemoryRetry;
    SetState(w, WorkerState::kIdle);
    if (job->memory_wait_since == absl::InfiniteFuture()) {
      job->memory_wait_since = clock_->Now();
      memory_waiters_.push_back(job);
    }
    WakeTimerFor(
        std::min(M(model).use[slot].blocked_until, job->memory_wait_since + load_timeout_));
  } else {
    M(model).use[slot].load_error = UnsharedCopy(status);
    W(w).last_error = status.ToString();
    SetState(w, WorkerState::kFailed);
    Log(LogSeverity::kError, absl::StrCat("worker ", W(w).id, " on ", device.ToString(),
                                          " cannot load ", model, ": ", status.message()));
  }
  if (!memory && Unservable(model)) {
    const absl::Status cause(status.code(), absl::StrCat("no device can load ", model,
                                                         "; the last error: ", status.message()));
    End(job, JobState::kFailed, cause, /*ran=*/false, endings);
    FailModel(model, cause, endings);
  } else if (memory && clock_->Now() - job->memory_wait_since >= load_timeout_) {
    End(job, JobState::kFailed,
        absl::ResourceExhaustedError(absl::StrCat("waited ", absl::FormatDuration(load_timeout_),
                                                  " for memory to load ", model, ": ",
                                                  status.message())),
        /*ran=*/false, endings);
  } else {
    Requeue(job, endings);
  }
}

void Scheduler::RunJob(int w, QueuedJob* job, Held& held, Endings& endings) {
  const std::string model = job->model;
  const int slot = W(w).slot;
  W(w).job = nullptr;
  if (job->cancel_requested) {
    End(job, JobState::kCancelled, absl::CancelledError("cancelled by Cancel()"), false, endings);
    return;
  }
  if (stopping_ && absl::Now() >= drain_deadline_) {
    End(job, JobState::kCancelled,
        absl::CancelledError("the worker pool shut down before the request ran"), false, endings);
    return;
  }
  if (job->deadline <= clock_->Now()) {
    End(job, JobState::kExpired,
        absl::DeadlineExceededError("the request's deadline passed in the queue"), false, endings);
    return;
  }
  memory_waiters_.erase(std::remove(memory_waiters_.begin(), memory_waiters_.end(), job),
                        memory_waiters_.end());
  W(w).job = job;
  SetJobState(job, JobState::kRunning);
  SetState(w, WorkerState::kBusy);
  ++M(model).stats.running;
  std::vector<QueuedJob*> batch = {job};
  if (job->task.joinable != nullptr) Join(w, batch);
  const Device device = devices_[slot];
  const int worker_id = W(w).id;
  mu_.Unlock();
  const JoinedRun run = RunBatch(batch, held->get(), worker_id, device);
  mu_.Lock();
  M(model).stats.running -= static_cast<int>(batch.size());
  const absl::Time now = clock_->Now();
  W(w).job = nullptr;
  W(w).completed += batch.size();
  W(w).last_activity = now;
  M(model).use[slot].last_used = now;
  M(model).stats.last_used = now;
  SetState(w, WorkerState::kIdle);
  for (size_t i = 0; i < batch.size(); ++i) {
    const absl::Status& status = run.statuses[i];
    if (!status.ok()) {
      ++W(w).errors;
      W(w).last_error = status.ToString();
    }
    End(batch[i], status.ok() ? JobState::kSucceeded : JobState::kFailed, status, /*ran=*/true,
        endings);
  }
}

void Scheduler::ReleaseHeld(int w, Held& held) {
  const std::string model = W(w).model;
  const int slot = W(w).slot;
  const Device device = devices_[slot];
  const bool unload = KeepAlive(M(model), slot) == absl::ZeroDuration() && queue_.Count(model) == 0;
  std::shared_ptr<ModelBackend> backend = M(model).backend;
  W(w).holding = false;
  // The keep-alive counts from the last use (a request's end), not from now; an unload the timer
  // skipped while the instance was held is due again.
  DeviceUse& use = M(model).use[slot];
  use.unload_tried = absl::InfinitePast();
  if (use.last_used == absl::InfinitePast()) use.last_used = clock_->Now();
  if (KeepAlive(M(model), slot) > absl::ZeroDuration()) {
    WakeTimerFor(use.last_used + KeepAlive(M(model), slot));
  }
  ++memory_epoch_;  // an idle instance may be evicted
  Held releasing = std::move(held);
  mu_.Unlock();
  backend->TouchOn(device);
  releasing.reset();
  const int unloaded = unload ? backend->UnloadIdle(device, 1) : 0;
  mu_.Lock();
  M(model).stats.unloads += static_cast<uint64_t>(unloaded);
  WakeIfMemoryBlocked();
}

void Scheduler::WaitForWork(int w, absl::Time until) {
  W(w).blocked = true;
  if (W(w).state != WorkerState::kFailed) SetState(w, WorkerState::kIdle);
  while (!W(w).wake_pending && absl::Now() < until &&
         !(stopping_ && absl::Now() >= drain_deadline_)) {
    mu_.WaitWithDeadline(worker_cvs_[w].get(),
                         stopping_ ? std::min(until, drain_deadline_) : until);
  }
  W(w).wake_pending = false;
  W(w).blocked = false;
}

void Scheduler::NoteSwitch(int w) {
  const absl::Time now = clock_->Now();
  std::deque<absl::Time>& switches = W(w).switches;
  while (!switches.empty() && switches.front() <= now - absl::Hours(1)) switches.pop_front();
  switches.push_back(now);
  ++W(w).switch_count;
}

// The one place a worker's state changes, so that each change is stamped with its time.
void Scheduler::SetState(int w, WorkerState state) {
  if (W(w).state == state) return;
  W(w).state = state;
  W(w).state_since = clock_->Now();
}

MemoryGovernor::ReserveOptions Scheduler::ReserveFor(const QueuedJob* job,
                                                     const std::string& model) {
  MemoryGovernor::ReserveOptions options;
  options.deadline = absl::Now() + load_timeout_;
  std::vector<const void*> spared;
  for (const auto& [id, m] : models_) {
    if (id != model && !policy_->MayEvict(*this, id, job)) spared.push_back(m.backend->account());
  }
  options.may_evict = [spared](const EvictionCandidate& candidate) {
    return std::find(spared.begin(), spared.end(), candidate.account) == spared.end();
  };
  const SchedulingPolicy* policy = policy_.get();
  options.eviction_score = [policy](const EvictionCandidate& candidate, absl::Time now) {
    return policy->EvictionScore(candidate, now);
  };
  return options;
}

}  // namespace modelpool::workers_internal
