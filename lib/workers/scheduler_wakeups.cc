// Waking workers and the timer: which worker a queued job wakes, and who is woken when memory
// is released or the clock jumps. Called with the scheduler's lock held, except the two
// entry points that take it (OnClockJump, OnMemoryReleased). See Note [Scheduler locking].
#include "lib/workers/scheduler.h"

namespace modelpool::workers_internal {

void Scheduler::Wake(int w) {
  if (W(w).wake_pending) return;
  W(w).wake_pending = true;
  worker_cvs_[w]->Signal();
}

void Scheduler::WakeWaiting() {
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (W(static_cast<int>(w)).blocked) Wake(static_cast<int>(w));
  }
}

void Scheduler::WakeFor(const QueuedJob& job) {
  if (job.pin >= 0) {
    Wake(job.pin);
    return;
  }
  const Model& model = M(job.model);
  auto waiting = [&](const WorkerSlot& w) {
    return w.blocked && !w.wake_pending && model.runs_on[w.slot];
  };
  // A worker that holds an instance of the model first, then one that serves it; without one,
  // every worker that could.
  for (bool holding : {true, false}) {
    for (const WorkerSlot& w : workers_) {
      if (waiting(w) && w.model == job.model && (w.holding || !holding)) {
        Wake(w.id);
        return;
      }
    }
  }
  for (const WorkerSlot& w : workers_) {
    if (waiting(w)) Wake(w.id);
  }
}

void Scheduler::WakeTimer() { timer_cv_.Signal(); }

void Scheduler::WakeTimerFor(absl::Time t) {
  if (t < timer_next_) WakeTimer();
}

void Scheduler::OnClockJump() {
  MutexLock lock(&mu_);
  WakeTimer();
}

void Scheduler::WakeIfMemoryBlocked() {
  for (const auto& [id, model] : models_) {
    for (const DeviceUse& use : model.use) {
      if (use.memory_blocked) {
        WakeWaiting();
        return;
      }
    }
  }
}

void Scheduler::OnMemoryReleased() {
  Endings endings;
  {
    MutexLock lock(&mu_);
    ++memory_epoch_;
    WakeIfMemoryBlocked();
    // The last instance of a model its devices gave up may just have gone.
    FailUnavailable(endings);
  }
  Deliver(endings);
}

}  // namespace modelpool::workers_internal
