// The worker loop: take the job the policy chooses (or a health check that is due), get an
// instance of its model (the one held, an idle one, or a new load), run it, and hand the
// instance back when there is nothing more for it. See Note [Scheduler locking].
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool::workers_internal {

// Note [Lingering]
// A worker that runs out of work keeps its instance for `kLinger` (real time) before it hands
// it back: a request that follows at once then starts without a lease handed back and taken
// again (which doubled the dispatch latency). The instance is leased meanwhile, so not evicted;
// a load that needed it is retried when it is handed back (the memory epoch moves), and a
// request for its model goes to this worker (`WakeFor`, `BetterPlacedElsewhere`).
constexpr absl::Duration kLinger = absl::Milliseconds(1);

void Scheduler::Serve(int w, uint64_t generation, std::shared_ptr<Lifeline> lifeline) {
  Held held;
  Endings endings;
  bool lingered = false;
  mu_.Lock();
  if (W(w).state == WorkerState::kStarting) SetState(w, Resting());
  for (;;) {
    if (!endings.empty() || HasEvents()) {
      mu_.Unlock();
      Deliver(endings);
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
    std::optional<Call> call;
    if (step.kind == Step::kCheck) {
      call = BeginCheck(w, step.model, held, endings);
    } else if (EnsureInstance(w, step.job, held, endings)) {
      call = BeginRun(w, step.job, endings);
    }
    if (!call) continue;
    mu_.Unlock();
    Deliver(endings);
    const JoinedRun run = RunCall(*call, held->get());
    if (!Reacquire(w, generation, *lifeline)) {
      // Given up on (Note [Hung calls]): the request has ended and another thread serves the
      // worker. The instance may be broken: unload it rather than hand it back.
      held->Destroy();
      held.reset();
      LeaveOrphaned(*lifeline);
      return;
    }
    if (step.kind == Step::kCheck) {
      FinishCheck(w, *call, run.statuses.front(), held, endings);
    } else {
      FinishRun(w, *call, run, endings);
    }
  }
  if (held != nullptr) ReleaseHeld(w, held);
  SetState(w, WorkerState::kStopped);
  mu_.Unlock();
  Deliver(endings);
}

bool Scheduler::Reacquire(int w, uint64_t generation, Lifeline& lifeline) {
  lifeline.mu.Lock();
  if (!lifeline.alive) {
    lifeline.mu.Unlock();
    return false;
  }
  mu_.Lock();
  if (W(w).generation == generation) {
    lifeline.mu.Unlock();
    return true;
  }
  OrphanReturned(w, generation);
  mu_.Unlock();
  lifeline.mu.Unlock();
  return false;
}

void Scheduler::LeaveOrphaned(Lifeline& lifeline) {
  MutexLock alive_lock(&lifeline.mu);
  if (!lifeline.alive) return;
  // The instance it unloaded counted against its model's limit: work waiting for a load may
  // start now.
  MutexLock lock(&mu_);
  ++memory_epoch_;
  WakeWaiting();
}

Scheduler::Step Scheduler::Decide(int w) {
  if (stopping_ && absl::Now() >= drain_deadline_) return {Step::kExit};
  if (!stopping_) {
    if (std::string model = CheckDue(w); !model.empty()) {
      return {Step::kCheck, nullptr, std::move(model)};
    }
  }
  to_wake_.clear();
  QueuedJob* job = policy_->Choose(*this, w);
  for (int other : to_wake_) Wake(other);
  to_wake_.clear();
  if (job == nullptr) {
    // Work this worker may not take now (limits, placement, memory, restarts, circuits) may
    // become its with time: the timer must know when.
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
  if (W(w).holding) {
    SetState(w, WorkerState::kSwitching, absl::StrCat("from ", W(w).model, " to ", model));
    ReleaseHeld(w, held);
  }
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
    SetState(w, Resting());
    Requeue(job, endings);
    return false;
  }
  SetJobState(job, JobState::kLoading);
  SetState(w, WorkerState::kLoading, model);
  device_loading_[slot] = true;
  M(model).use[slot].loading = true;
  if (M(model).use[slot].restart.restarting()) ++M(model).stats.restarts;
  const MemoryGovernor::ReserveOptions reserve = ReserveFor(job, model);
  mu_.Unlock();
  absl::StatusOr<Held> loaded = Load(*backend, model, slot, reserve);
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
  M(model).use[slot].memory_blocked = false;
  NoteLoaded(model, slot);
  return true;
}

absl::StatusOr<Scheduler::Held> Scheduler::Load(ModelBackend& backend, const std::string& model,
                                                int slot,
                                                const MemoryGovernor::ReserveOptions& reserve) {
  if (faults_ != nullptr) {
    MODELPOOL_RETURN_IF_ERROR(faults_->OnLoad(model, devices_[slot]));
  }
  return backend.LoadOn(devices_[slot], reserve);
}

void Scheduler::NoteLoaded(const std::string& model, int slot) {
  Model& m = M(model);
  ++m.stats.loads;
  m.use[slot].last_check = clock_->Now();  // a fresh instance: the check interval starts now
  EmitModel(&WorkerPoolListener::OnModelLoaded, model, slot, 1);
  // Evictions happen during loads, on the device of the load.
  for (auto& [id, other] : models_) {
    const uint64_t evictions = other.backend->Evictions();
    if (evictions > other.evictions_seen) {
      EmitModel(&WorkerPoolListener::OnModelEvicted, id, slot,
                static_cast<int>(evictions - other.evictions_seen));
      other.evictions_seen = evictions;
    }
  }
}

std::optional<Scheduler::Call> Scheduler::BeginRun(int w, QueuedJob* job, Endings& endings) {
  const std::string model = job->model;
  const int slot = W(w).slot;
  W(w).job = nullptr;
  std::optional<absl::Status> ended;
  JobState state = JobState::kCancelled;
  if (job->cancel_requested) {
    ended = absl::CancelledError("cancelled by Cancel()");
  } else if (stopping_ && absl::Now() >= drain_deadline_) {
    ended = absl::CancelledError("the worker pool shut down before the request ran");
  } else if (job->deadline <= clock_->Now()) {
    ended = absl::DeadlineExceededError("the request's deadline passed in the queue");
    state = JobState::kExpired;
  }
  if (ended) {
    SetState(w, Resting());
    End(job, state, *ended, /*ran=*/false, endings);
    return std::nullopt;
  }
  DeviceUse& use = M(model).use[slot];
  if (!use.breaker.Allows()) {  // the circuit opened while the instance was being readied
    SetState(w, Resting());
    Requeue(job, endings);
    return std::nullopt;
  }
  memory_waiters_.erase(std::remove(memory_waiters_.begin(), memory_waiters_.end(), job),
                        memory_waiters_.end());
  W(w).job = job;
  SetJobState(job, JobState::kRunning);
  SetState(w, WorkerState::kBusy, absl::StrCat("job ", job->id));
  ++M(model).stats.running;
  std::vector<QueuedJob*> batch = {job};
  if (job->task.joinable != nullptr) Join(w, batch);
  W(w).joined.assign(batch.begin() + 1, batch.end());
  // A joined call is one call: it ends at the soonest of its requests' execution timeouts.
  absl::Duration timeout = absl::InfiniteDuration();
  for (const QueuedJob* joined : batch) timeout = std::min(timeout, joined->execution_timeout);
  const absl::Time now = clock_->Now();
  W(w).in_call = true;
  W(w).call_started = now;
  W(w).call_deadline = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : now + timeout;
  W(w).call_probe = use.breaker.Start();
  WakeTimerFor(W(w).call_deadline);
  Call call{job->task.run, MakeModelCall(model, slot), job, model, W(w).call_probe, now};
  if (job->task.joinable != nullptr) {
    for (const QueuedJob* joined : batch) {
      call.joinables.push_back(joined->task.joinable);
      call.runs.push_back(joined->task.run);
    }
  }
  call.device = devices_[slot];
  call.worker = W(w).id;
  return call;
}

void Scheduler::FinishRun(int w, const Call& call, const JoinedRun& run, Endings& endings) {
  std::vector<QueuedJob*> batch = {call.job};
  batch.insert(batch.end(), W(w).joined.begin(), W(w).joined.end());
  W(w).joined.clear();
  const std::string& model = call.model;
  const int slot = W(w).slot;
  M(model).stats.running -= static_cast<int>(batch.size());
  const absl::Time now = clock_->Now();
  W(w).job = nullptr;
  W(w).in_call = false;
  W(w).call_deadline = absl::InfiniteFuture();
  W(w).completed += batch.size();
  W(w).last_activity = now;
  M(model).use[slot].last_used = now;
  M(model).stats.last_used = now;
  // The circuit breaker counts the call once: as failed when one of its requests failed in a
  // way that counts against the model.
  absl::Status outcome;
  for (const absl::Status& status : run.statuses) {
    if (status.ok()) continue;
    ++W(w).errors;
    W(w).last_error = status.ToString();
    if (outcome.ok() || (CountsAgainstModel(status) && !CountsAgainstModel(outcome))) {
      outcome = status;
    }
  }
  if (outcome.ok()) M(model).latency.Add(now - call.started, failures_.latency_window);
  RecordOutcome(model, slot, call.probe, CountsAgainstModel(outcome), outcome, endings);
  // An error a broken instance would give: check the instance before it serves again.
  if (CountsAgainstModel(outcome) && M(model).probe != nullptr) W(w).check_held = true;
  SetState(w, Resting());
  int64_t rows = 0;
  for (const auto& joinable : call.joinables) rows += joinable->rows();
  int64_t tokens = run.tokens;
  if (tokens < 0) {
    tokens = 0;
    for (const QueuedJob* job : batch) tokens += job->tokens;
  }
  EmitBatch(model, slot, call.worker, static_cast<int>(batch.size()),
            call.joinables.empty() ? 1 : rows, tokens, now - call.started);
  for (size_t i = 0; i < batch.size(); ++i) {
    QueuedJob* job = batch[i];
    const absl::Status& status = run.statuses[i];
    if (IsOutOfMemory(status) && FallBack(job, status)) {
      ++M(job->model).stats.submitted;
      Enqueue(job);
      continue;
    }
    End(job, status.ok() ? JobState::kSucceeded : JobState::kFailed, status, run.ran[i], endings);
  }
}

void Scheduler::ReleaseHeld(int w, Held& held) {
  const std::string model = W(w).model;
  const int slot = W(w).slot;
  const Device device = devices_[slot];
  const bool unload = KeepAlive(M(model), slot) == absl::ZeroDuration() && queue_.Count(model) == 0;
  std::shared_ptr<ModelBackend> backend = M(model).backend;
  W(w).holding = false;
  W(w).check_held = false;
  // The keep-alive counts from the last use (a request's end), not from now.
  DeviceUse& use = M(model).use[slot];
  if (use.last_used == absl::InfinitePast()) use.last_used = clock_->Now();
  ++memory_epoch_;  // an idle instance may be evicted
  Held releasing = std::move(held);
  mu_.Unlock();
  backend->TouchOn(device);
  releasing.reset();
  const int unloaded = unload ? backend->UnloadIdle(device, 1) : 0;
  mu_.Lock();
  // An unload the timer skipped while the instance was held is due again, now that it is idle.
  // Not before the release: the timer, woken, could find the instance still held and give the
  // unload up for good (an idle instance then stayed past its keep-alive).
  DeviceUse& released = M(model).use[slot];
  released.unload_tried = absl::InfinitePast();
  if (KeepAlive(M(model), slot) > absl::ZeroDuration()) {
    WakeTimerFor(released.last_used + KeepAlive(M(model), slot));
  }
  M(model).stats.unloads += static_cast<uint64_t>(unloaded);
  if (unloaded > 0) EmitModel(&WorkerPoolListener::OnModelUnloaded, model, slot, unloaded);
  WakeIfMemoryBlocked();
}

void Scheduler::DropHeld(int w, Held& held) {
  W(w).holding = false;
  W(w).check_held = false;
  ++memory_epoch_;
  Held dropping = std::move(held);
  mu_.Unlock();
  dropping->Destroy();
  dropping.reset();
  mu_.Lock();
  WakeIfMemoryBlocked();
}

ModelCall Scheduler::MakeModelCall(const std::string& model, int slot) {
  const Model& m = M(model);
  return ModelCall(model, devices_[slot], faults_, m.backend, m.counters, failures_.oom_split);
}

WorkerState Scheduler::Resting() const {
  return stopping_ ? WorkerState::kDraining : WorkerState::kIdle;
}

void Scheduler::WaitForWork(int w, absl::Time until) {
  W(w).blocked = true;
  // A worker waiting for a restart stays kRestarting until its backoff has passed, and kFailed
  // while its device has given its model up.
  const WorkerSlot& s = W(w);
  const bool waits = (s.state == WorkerState::kRestarting || s.state == WorkerState::kFailed) &&
                     !s.restart_model.empty() && RestartWaits(s.restart_model, s.slot);
  if (!waits) SetState(w, Resting());
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
