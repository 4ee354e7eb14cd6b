// What the scheduler does about faults: failed loads and restarts with backoff, calls given up on
// (Note [Hung calls]), circuit breakers, and requests handed to a fallback model.
#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/status.h"

namespace modelpool::workers_internal {

// Note [Waiting for memory]
// A load that does not fit (what is loaded is leased, or wanted by queued work that ranks as
// high) leaves its request queued and marks the model's device blocked. It is tried again when
// memory may have come free: an instance unloaded or handed back by one of this pool's workers
// (the memory epoch moves), or, for leases held outside the pool, `kMemoryRetry` later. The
// request fails with `ResourceExhausted`, naming what is loaded, after `load_timeout` (or goes to
// its model's fallback).
constexpr absl::Duration kMemoryRetry = absl::Seconds(1);

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
    DeviceUse& use = M(model).use[slot];
    use.memory_blocked = true;
    use.blocked_epoch = memory_epoch_;
    use.blocked_until = clock_->Now() + kMemoryRetry;
    SetState(w, Resting());
    if (job->memory_wait_since == absl::InfiniteFuture()) {
      job->memory_wait_since = clock_->Now();
      memory_waiters_.push_back(job);
    }
    WakeTimerFor(std::min(use.blocked_until, job->memory_wait_since + load_timeout_));
    if (clock_->Now() - job->memory_wait_since < load_timeout_) {
      Requeue(job, endings);
      return;
    }
    const absl::Status waited = absl::ResourceExhaustedError(
        absl::StrCat("waited ", absl::FormatDuration(load_timeout_), " for memory to load ", model,
                     ": ", status.message()));
    if (FallBack(job, waited)) {
      ++M(job->model).stats.submitted;
      Enqueue(job);
    } else {
      End(job, JobState::kFailed, waited, /*ran=*/false, endings);
    }
    return;
  }
  // A model that cannot be loaded at all (it fits no budget) is not restarted.
  W(w).last_error = status.ToString();
  RecordFailure(w, model, status, endings);
  if (absl::Status unavailable = Unavailable(model); !unavailable.ok()) {
    End(job, JobState::kFailed, unavailable, /*ran=*/false, endings);
  } else {
    Requeue(job, endings);
  }
}

bool Scheduler::RecordFailure(int w, const std::string& model, const absl::Status& cause,
                              Endings& endings) {
  const int slot = W(w).slot;
  const Device device = devices_[slot];
  DeviceUse& use = M(model).use[slot];
  const bool gave_up = use.restart.Fail(failures_, clock_->Now(), cause, Uniform());
  use.restart_announced = false;
  W(w).restart_model = model;
  if (gave_up) {
    use.load_error = absl::UnavailableError(
        absl::StrCat(device.ToString(), " gave ", model, " up after ", use.restart.failures(),
                     " failures in a row; the last: ", cause.message()));
    SetState(w, WorkerState::kFailed, std::string(use.load_error.message()));
    LogLater(LogSeverity::kError, absl::StrCat("worker ", W(w).id, ": ", use.load_error.message()));
    FailUnavailable(endings);
  } else {
    const std::string reason =
        absl::StrCat(model, " on ", device.ToString(), " failed (", cause.message(), "); restart ",
                     use.restart.failures(), " of ", failures_.restart_max_attempts - 1, " in ",
                     absl::FormatDuration(use.restart.next_try() - clock_->Now()));
    SetState(w, WorkerState::kRestarting, reason);
    LogLater(LogSeverity::kWarning, absl::StrCat("worker ", W(w).id, ": ", reason));
    WakeTimerFor(use.restart.next_try());
  }
  return gave_up;
}

void Scheduler::Abandon(int w, const absl::Status& status, Endings& endings) {
  WorkerSlot& s = W(w);
  QueuedJob* job = s.job;
  std::vector<QueuedJob*> joined;
  joined.swap(s.joined);
  const std::string model = job != nullptr ? job->model : s.checking;
  const int slot = s.slot;
  const bool probe = s.call_probe;
  const absl::Time now = clock_->Now();
  const std::string what =
      job != nullptr ? absl::StrCat("job ", job->id) : absl::StrCat("a health check of ", model);
  orphans_.push_back({w, s.generation, std::move(threads_[w])});
  ++s.generation;
  ++s.hung;
  s.in_call = false;
  s.call_deadline = absl::InfiniteFuture();
  s.holding = false;  // the instance stays with the old thread, which unloads it
  s.check_held = false;
  s.job = nullptr;
  s.checking.clear();
  s.blocked = false;
  s.wake_pending = false;
  s.last_error = status.ToString();
  DeviceUse& use = M(model).use[slot];
  if (job != nullptr) {
    M(model).stats.running -= 1 + static_cast<int>(joined.size());
    ++M(model).stats.hung;
    End(job, JobState::kFailed, status, /*ran=*/false, endings);
    for (QueuedJob* other : joined) End(other, JobState::kFailed, status, /*ran=*/false, endings);
  } else {
    use.checking = false;
    use.last_check = now;
    use.last_check_passed = false;
    ++M(model).stats.checks;
    ++M(model).stats.checks_failed;
  }
  if (stopping_) {
    SetState(w, WorkerState::kStopped, absl::StrCat(what, " was still running at shutdown"));
    return;
  }
  const absl::Status cause =
      absl::DeadlineExceededError(absl::StrCat(what, " hung: ", status.message()));
  RecordOutcome(model, slot, probe, /*failure=*/true, cause, endings);
  RecordFailure(w, model, cause, endings);
  ++s.threads;
  threads_[w] = std::thread([this, w, generation = s.generation, lifeline = lifeline_] {
    Serve(w, generation, lifeline);
  });
}

void Scheduler::OrphanReturned(int w, uint64_t generation) {
  // Called on the returning thread itself, which leaves at once: nobody needs to join it.
  for (auto it = orphans_.begin(); it != orphans_.end(); ++it) {
    if (it->worker == w && it->generation == generation) {
      it->thread.detach();
      orphans_.erase(it);
      return;
    }
  }
}

void Scheduler::RecordOutcome(const std::string& model, int slot, bool probe, bool failure,
                              const absl::Status& cause, Endings& endings) {
  DeviceUse& use = M(model).use[slot];
  if (!failure) use.restart.Succeed();
  std::optional<CircuitBreaker::Change> change =
      use.breaker.Record(failures_, clock_->Now(), probe, failure, std::string(cause.message()));
  if (change) OnCircuitChange(model, slot, *change, endings);
}

void Scheduler::OnCircuitChange(const std::string& model, int slot,
                                const CircuitBreaker::Change& change, Endings& endings) {
  const Device device = devices_[slot];
  const absl::Time now = clock_->Now();
  if (!listeners_.empty()) {
    Emit([e = CircuitChange{model, device, change.from, change.to, now, change.reason}](
             WorkerPoolListener& l) { l.OnCircuitChanged(e); });
  }
  LogLater(change.to == CircuitState::kOpen ? LogSeverity::kWarning : LogSeverity::kInfo,
           absl::StrCat("the circuit of ", model, " on ", device.ToString(), " is ",
                        CircuitStateName(change.to), ": ", change.reason));
  if (change.to == CircuitState::kOpen) {
    WakeTimerFor(M(model).use[slot].breaker.reopens_at());
    FailUnavailable(endings);  // fail fast where no device is left
  }
  WakeWaiting();  // the work may go elsewhere, or probe here
}

absl::Status Scheduler::Unavailable(const std::string& model_id) const {
  const Model& m = M(model_id);
  std::vector<std::string> causes;
  for (size_t slot = 0; slot < devices_.size(); ++slot) {
    if (!m.runs_on[slot]) continue;
    const DeviceUse& use = m.use[slot];
    const Device& device = devices_[slot];
    if (use.breaker.state() == CircuitState::kOpen) {
      causes.push_back(absl::StrCat("its circuit on ", device.ToString(), " is open until ",
                                    absl::FormatTime(use.breaker.reopens_at()), " (",
                                    use.breaker.open_reason(), ")"));
      continue;
    }
    const bool serving =
        use.loading || m.backend->Instances(device).total > 0 ||
        std::any_of(workers_.begin(), workers_.end(), [&](const WorkerSlot& w) {
          return w.slot == static_cast<int>(slot) && w.holding && w.model == model_id;
        });
    if (use.load_error.ok() || serving) return absl::OkStatus();
    causes.push_back(std::string(use.load_error.message()));
  }
  return absl::UnavailableError(
      absl::StrCat("no device can serve ", model_id, ": ", absl::StrJoin(causes, "; ")));
}

void Scheduler::FailUnavailable(Endings& endings) {
  std::vector<std::string> queued;
  queue_.ForEachModel([&](const std::string& model) { queued.push_back(model); });
  for (const std::string& model : queued) {
    if (absl::Status unavailable = Unavailable(model); !unavailable.ok()) {
      FailModel(model, unavailable, endings);
    }
  }
}

bool Scheduler::FallBack(QueuedJob* job, const absl::Status& status) {
  Model& model = M(job->model);
  const std::string& fallback = model.options.fallback_model;
  if (job->fell_back || fallback.empty()) return false;
  auto it = models_.find(fallback);
  if (it == models_.end() || it->second.backend->type() != model.backend->type()) {
    LogLater(LogSeverity::kWarning,
             absl::StrCat(job->model, "'s fallback ", fallback,
                          it == models_.end() ? " is not registered" : " is of another type"));
    return false;
  }
  ++model.stats.fallbacks;
  LogLater(LogSeverity::kInfo, absl::StrCat("job ", job->id, " of ", job->model, " goes to ",
                                            fallback, ": ", status.message()));
  memory_waiters_.erase(std::remove(memory_waiters_.begin(), memory_waiters_.end(), job),
                        memory_waiters_.end());
  job->model = fallback;
  job->fell_back = true;
  job->worker = -1;
  job->device.reset();
  job->pin = -1;
  job->memory_wait_since = absl::InfiniteFuture();
  return true;
}

double Scheduler::Uniform() { return std::uniform_real_distribution<double>(0, 1)(random_); }

}  // namespace modelpool::workers_internal
