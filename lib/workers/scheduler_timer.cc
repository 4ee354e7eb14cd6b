// What time and explicit requests decide: deadlines, waits for memory, keep-alive, aging,
// switch windows (the timer thread), and preloading.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/status.h"

namespace modelpool::workers_internal {

void Scheduler::TimerLoop() {
  Endings endings;
  mu_.Lock();
  while (!timer_stop_) {
    const absl::Time now = clock_->Now();
    ExpireDue(now, endings);
    AbandonHung(now, endings);
    const std::vector<Unload> unloads = DueUnloads(now);
    const bool aged = PromoteAged(now);
    const bool rolled = RollSwitchWindows(now);
    const bool unblocked = UnblockMemory(now);
    const bool reopened = ReopenCircuits(now, endings);
    const bool restarts = RestartsDue(now);
    const bool checks = RequestDueChecks(now);
    if (aged || rolled || unblocked || reopened || restarts || checks) WakeWaiting();
    if (!endings.empty() || !unloads.empty() || HasEvents()) {
      mu_.Unlock();
      Deliver(endings);
      std::vector<int> unloaded;
      for (const Unload& u : unloads) {
        unloaded.push_back(u.backend->UnloadIdle(devices_[u.slot], u.count));
      }
      mu_.Lock();
      for (size_t i = 0; i < unloads.size(); ++i) {
        auto it = models_.find(unloads[i].model);
        if (it == models_.end() || unloaded[i] == 0) continue;
        it->second.stats.unloads += static_cast<uint64_t>(unloaded[i]);
        EmitModel(&WorkerPoolListener::OnModelUnloaded, unloads[i].model, unloads[i].slot,
                  unloaded[i]);
      }
      continue;
    }
    // Every event due now has been handled (each marks itself so), so the next one is later; a
    // signal (a new deadline, a jump of the clock) can only come while this thread waits, as it
    // holds the lock until then.
    const absl::Time next = NextEvent();
    const absl::Time wake_at =
        next == absl::InfiniteFuture() ? absl::InfiniteFuture() : clock_->RealTimeOf(next);
    if (wake_at > absl::Now()) {
      timer_next_ = next;
      mu_.WaitWithDeadline(&timer_cv_, wake_at);
      timer_next_ = absl::InfinitePast();
    }
  }
  mu_.Unlock();
}

void Scheduler::ExpireDue(absl::Time now, Endings& endings) {
  while (QueuedJob* job = queue_.EarliestDeadline()) {
    if (job->deadline > now) break;
    queue_.Remove(job);
    End(job, JobState::kExpired,
        absl::DeadlineExceededError("the request's deadline passed in the queue"), false, endings);
  }
  const std::vector<QueuedJob*> waiters = memory_waiters_;
  for (QueuedJob* job : waiters) {
    if (job->worker >= 0 || now - job->memory_wait_since < load_timeout_) continue;
    std::string loaded;
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      if (M(job->model).runs_on[slot]) {
        absl::StrAppend(&loaded, loaded.empty() ? "" : "; ", governor_->Describe(devices_[slot]));
      }
    }
    queue_.Remove(job);
    const absl::Status no_room = absl::ResourceExhaustedError(absl::StrCat(
        "no room to load ", job->model, " within ", absl::FormatDuration(load_timeout_),
        ": what is loaded is leased or wanted (", loaded, ")"));
    if (FallBack(job, no_room)) {
      ++M(job->model).stats.submitted;
      Enqueue(job);
    } else {
      End(job, JobState::kFailed, no_room, false, endings);
    }
  }
}

void Scheduler::AbandonHung(absl::Time now, Endings& endings) {
  for (size_t w = 0; w < workers_.size(); ++w) {
    const WorkerSlot& s = W(static_cast<int>(w));
    if (!s.in_call || s.call_deadline > now) continue;
    const absl::Duration limit = s.call_deadline - s.call_started;
    Abandon(static_cast<int>(w),
            absl::DeadlineExceededError(absl::StrCat(
                s.job != nullptr
                    ? absl::StrCat("job ", s.job->id, " ran past its execution timeout")
                    : absl::StrCat("the health check of ", s.checking, " ran past its timeout"),
                " of ", absl::FormatDuration(limit), " on worker ", s.id, " (",
                devices_[s.slot].ToString(),
                "); the worker has a new thread and whatever the call returns is discarded")),
            endings);
  }
}

bool Scheduler::ReopenCircuits(absl::Time now, Endings& endings) {
  bool any = false;
  for (auto& [id, model] : models_) {
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      if (std::optional<CircuitBreaker::Change> change = model.use[slot].breaker.Tick(now)) {
        OnCircuitChange(id, static_cast<int>(slot), *change, endings);
        any = true;
      }
    }
  }
  return any;
}

bool Scheduler::RestartsDue(absl::Time now) {
  bool any = false;
  for (auto& [id, model] : models_) {
    for (DeviceUse& use : model.use) {
      if (use.restart.restarting() && !use.restart_announced && use.restart.next_try() <= now) {
        use.restart_announced = true;
        any = true;
      }
    }
  }
  return any;
}

absl::Duration Scheduler::KeepAlive(const Model& model, int slot) const {
  if (model.options.keep_alive.has_value()) return *model.options.keep_alive;
  return devices_[slot].is_cuda() ? settings_.keep_alive_gpu : settings_.keep_alive_cpu;
}

std::vector<Scheduler::Unload> Scheduler::DueUnloads(absl::Time now) {
  std::vector<Unload> unloads;
  for (auto& [id, model] : models_) {
    if (queue_.Count(id) > 0) continue;  // wanted
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      const absl::Duration keep_alive = KeepAlive(model, static_cast<int>(slot));
      DeviceUse& use = model.use[slot];
      if (!model.runs_on[slot] || keep_alive < absl::ZeroDuration()) continue;
      if (use.last_used == absl::InfinitePast()) {
        // Loaded by the manager outside this pool: the keep-alive counts from now.
        if (model.backend->Instances(devices_[slot]).total == 0) continue;
        use.last_used = now;
      }
      const absl::Time due = use.last_used + keep_alive;
      if (due > now || use.unload_tried >= due) continue;
      use.unload_tried = now;  // due: handled now, whatever there is to unload
      const InstanceCount count = model.backend->Instances(devices_[slot]);
      if (count.idle > 0)
        unloads.push_back({model.backend, id, static_cast<int>(slot), count.idle});
    }
  }
  return unloads;
}

bool Scheduler::PromoteAged(absl::Time now) {
  bool promoted = false;
  while (QueuedJob* job = queue_.FirstAfter(promoted_seq_)) {
    if (job->queued_at + settings_.aging_bound > now) break;
    promoted_seq_ = job->seq;
    promoted = true;
  }
  return promoted;
}

bool Scheduler::RollSwitchWindows(absl::Time now) {
  const int cap = settings_.max_switches_per_hour;
  if (cap <= 0) return false;
  bool freed = false;
  for (WorkerSlot& w : workers_) {
    const bool capped = static_cast<int>(w.switches.size()) >= cap;
    while (!w.switches.empty() && w.switches.front() <= now - absl::Hours(1)) {
      w.switches.pop_front();
    }
    freed = freed || (capped && static_cast<int>(w.switches.size()) < cap);
  }
  return freed;
}

bool Scheduler::UnblockMemory(absl::Time now) {
  bool unblocked = false;
  for (auto& [id, model] : models_) {
    for (DeviceUse& use : model.use) {
      if (use.memory_blocked && use.blocked_until <= now) {
        use.memory_blocked = false;
        unblocked = true;
      }
    }
  }
  return unblocked;
}

absl::Time Scheduler::NextEvent() const {
  absl::Time next = absl::InfiniteFuture();
  if (const QueuedJob* job = queue_.EarliestDeadline()) next = std::min(next, job->deadline);
  for (const QueuedJob* job : memory_waiters_) {
    // One a worker took is checked by that worker when it puts it back.
    if (job->worker < 0) next = std::min(next, job->memory_wait_since + load_timeout_);
  }
  if (const QueuedJob* job = queue_.FirstAfter(promoted_seq_)) {
    next = std::min(next, job->queued_at + settings_.aging_bound);
  }
  const int cap = settings_.max_switches_per_hour;
  for (const WorkerSlot& w : workers_) {
    if (cap > 0 && static_cast<int>(w.switches.size()) >= cap) {
      next = std::min(next, w.switches.front() + absl::Hours(1));
    }
  }
  for (const WorkerSlot& w : workers_) {
    if (w.in_call) next = std::min(next, w.call_deadline);
  }
  const absl::Duration check_interval = failures_.health_check_interval;
  for (const auto& [id, model] : models_) {
    for (const DeviceUse& use : model.use) {
      if (use.memory_blocked) next = std::min(next, use.blocked_until);
      next = std::min(next, use.breaker.reopens_at());
      if (use.restart.restarting() && !use.restart_announced) {
        next = std::min(next, use.restart.next_try());
      }
      if (model.probe != nullptr && check_interval > absl::ZeroDuration() &&
          use.last_check != absl::InfinitePast() && !use.check_requested && !use.checking) {
        next = std::min(next, use.last_check + check_interval);
      }
    }
    if (queue_.Count(id) > 0) continue;
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      const absl::Duration keep_alive = KeepAlive(model, static_cast<int>(slot));
      const DeviceUse& use = model.use[slot];
      if (!model.runs_on[slot] || keep_alive < absl::ZeroDuration() ||
          use.last_used == absl::InfinitePast()) {
        continue;
      }
      const absl::Time due = use.last_used + keep_alive;
      if (use.unload_tried < due) next = std::min(next, due);
    }
  }
  return next;
}

absl::Status Scheduler::Preload(const std::string& model, int count) {
  if (count < 1) return absl::InvalidArgumentError("PreloadModel: the count must be at least 1");
  std::shared_ptr<ModelBackend> backend;
  std::vector<int> loads;  // one entry per instance to load, by device slot
  {
    MutexLock lock(&mu_);
    auto it = models_.find(model);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model ", model));
    backend = it->second.backend;
    if (settings_.worker_pool) {
      Model& m = it->second;
      // Spread the instances over the model's devices, the preferred one first.
      std::vector<int> target(devices_.size(), 0);
      for (int i = 0; i < count; ++i) {
        int best = -1;
        for (size_t slot = 0; slot < devices_.size(); ++slot) {
          if (!m.runs_on[slot]) continue;
          const int s = static_cast<int>(slot);
          if (best < 0 || target[s] < target[best] ||
              (target[s] == target[best] && s == m.preferred)) {
            best = s;
          }
        }
        ++target[best];
      }
      for (size_t slot = 0; slot < devices_.size(); ++slot) {
        if (target[slot] == 0) continue;
        m.use[slot].load_error = absl::OkStatus();  // asked for: try again
        m.use[slot].restart.Reset();
        const int have = backend->Instances(devices_[slot]).total;
        for (int k = have; k < target[slot]; ++k) loads.push_back(static_cast<int>(slot));
        // Workers that serve nothing, or a model with nothing queued, take it as theirs: a
        // preload reserves, it never takes a worker from work that waits.
        int assigned = 0;
        for (int pass = 0; pass < 3 && assigned < target[slot]; ++pass) {
          for (WorkerSlot& w : workers_) {
            if (assigned >= target[slot]) break;
            if (w.slot != static_cast<int>(slot)) continue;
            const bool mine = w.model == model;
            const bool free = w.model.empty();
            const bool spare = !w.holding && w.job == nullptr && queue_.Count(w.model) == 0;
            if ((pass == 0 && mine) || (pass == 1 && free && !mine) ||
                (pass == 2 && spare && !mine && !free)) {
              w.model = model;
              ++assigned;
            }
          }
        }
      }
    }
  }
  if (!settings_.worker_pool) return PreloadDirect(*backend, count);
  absl::Status first_error;
  for (int slot : loads) {
    const Device device = devices_[slot];
    MemoryGovernor::ReserveOptions reserve;
    {
      MutexLock lock(&mu_);
      if (!mu_.AwaitWithDeadline([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                     mu_) { return stopping_ || !device_loading_[slot]; },
                                 absl::Now() + load_timeout_)) {
        return absl::DeadlineExceededError(absl::StrCat("preloading ", model, ": another load on ",
                                                        device.ToString(), " did not finish"));
      }
      if (stopping_) return absl::CancelledError("the worker pool is shutting down");
      device_loading_[slot] = true;
      M(model).use[slot].loading = true;
      reserve = ReserveFor(nullptr, model);
    }
    absl::StatusOr<Held> loaded = Load(*backend, model, slot, reserve);
    const absl::Status status = loaded.status();
    loaded = Held();  // idle now, preloaded
    Endings endings;
    {
      MutexLock lock(&mu_);
      device_loading_[slot] = false;
      DeviceUse& use = M(model).use[slot];
      use.loading = false;
      if (status.ok()) {
        NoteLoaded(model, slot);
        use.last_used = clock_->Now();
        WakeTimerFor(use.last_used + KeepAlive(M(model), slot));
      } else if (status.code() != absl::StatusCode::kResourceExhausted &&
                 use.restart.Fail(failures_, clock_->Now(), status, Uniform())) {
        use.load_error = absl::UnavailableError(
            absl::StrCat(device.ToString(), " gave ", model, " up after ", use.restart.failures(),
                         " failures in a row; the last: ", status.message()));
        FailUnavailable(endings);
      }
      WakeWaiting();
    }
    Deliver(endings);
    if (!status.ok() && first_error.ok()) {
      first_error = absl::Status(
          status.code(),
          absl::StrCat("preloading ", model, " on ", device.ToString(), ": ", status.message()));
    }
  }
  return first_error;
}

absl::Status Scheduler::PreloadDirect(ModelBackend& backend, int count) {
  std::vector<Held> held;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Held> instance = backend.AcquireAny(absl::ZeroDuration());
    if (!instance.ok()) {
      if (i > 0 && instance.status().code() == absl::StatusCode::kDeadlineExceeded) break;
      return instance.status();
    }
    held.push_back(*std::move(instance));
  }
  return absl::OkStatus();
}

}  // namespace modelpool::workers_internal
