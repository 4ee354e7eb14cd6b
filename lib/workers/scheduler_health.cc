// Health: deep checks (a one-row request on a loaded instance, on the interval, on demand and
// after an error a broken instance would give), and the health of workers, models and the pool
// in the statistics.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"
#include "modelpool/base/bytes.h"

namespace modelpool {

const char* HealthLevelName(HealthLevel level) {
  switch (level) {
    case HealthLevel::kHealthy:
      return "healthy";
    case HealthLevel::kDegraded:
      return "degraded";
    case HealthLevel::kUnhealthy:
      return "unhealthy";
  }
  return "unknown";
}

const char* CircuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

namespace workers_internal {
namespace {

// Makes `health` at least `level`, adding `reason`.
void Worsen(Health& health, HealthLevel level, const std::string& reason) {
  health.level = std::max(health.level, level);
  health.reason = health.reason.empty() ? reason : absl::StrCat(health.reason, "; ", reason);
}

}  // namespace

std::string Scheduler::CheckDue(int w) const {
  const WorkerSlot& s = W(w);
  if (s.check_held && s.holding) return s.model;
  for (const auto& [id, m] : models_) {
    if (m.probe == nullptr || !m.runs_on[s.slot]) continue;
    const DeviceUse& use = m.use[s.slot];
    if (!use.check_requested || use.checking) continue;
    // A worker checks the instance it holds, or an idle one when it holds none.
    if (s.holding ? s.model == id : IdleAvailable(m, s.slot)) return id;
  }
  return "";
}

std::optional<Scheduler::Call> Scheduler::BeginCheck(int w, const std::string& model, Held& held,
                                                     Endings& endings) {
  const int slot = W(w).slot;
  if (!W(w).holding) {
    std::shared_ptr<ModelBackend> backend = M(model).backend;
    ++M(model).use[slot].acquiring;
    mu_.Unlock();
    absl::StatusOr<Held> idle = backend->AcquireIdleOn(devices_[slot]);
    mu_.Lock();
    --M(model).use[slot].acquiring;
    if (!idle.ok()) return std::nullopt;  // taken meanwhile: checked when next idle
    if (W(w).model != model) {
      if (!W(w).model.empty()) queue_.Unpin(W(w).model, W(w).id);
      W(w).model = model;
    }
    W(w).held_model = model;
    held = *std::move(idle);
    W(w).holding = true;
  }
  DeviceUse& use = M(model).use[slot];
  use.check_requested = false;
  use.checking = true;
  const absl::Time now = clock_->Now();
  WorkerSlot& s = W(w);
  s.check_held = false;
  s.in_call = true;
  s.call_probe = false;
  s.call_started = now;
  s.call_deadline = now + failures_.health_check_timeout;
  s.checking = model;
  WakeTimerFor(s.call_deadline);
  SetState(w, WorkerState::kBusy, absl::StrCat("checking ", model));
  return Call{M(model).probe, MakeModelCall(model, slot), nullptr, model, false, now};
}

void Scheduler::FinishCheck(int w, const Call& call, const absl::Status& status, Held& held,
                            Endings& endings) {
  const int slot = W(w).slot;
  Model& m = M(call.model);
  DeviceUse& use = m.use[slot];
  W(w).in_call = false;
  W(w).call_deadline = absl::InfiniteFuture();
  W(w).checking.clear();
  use.last_check = clock_->Now();
  use.last_check_passed = status.ok();
  ++m.stats.checks;
  if (status.ok()) {
    use.checking = false;
    use.restart.Succeed();
    SetState(w, Resting());
    return;
  }
  ++m.stats.checks_failed;
  W(w).last_error = absl::StrCat("health check: ", status.ToString());
  // The instance failed its check: unload it, and load another after the restart's backoff.
  // The check ends only then, so that `CheckHealth()` sees its outcome.
  RecordFailure(
      w, call.model,
      absl::Status(status.code(), absl::StrCat("its health check failed: ", status.message())),
      endings);
  DropHeld(w, held);
  M(call.model).use[slot].checking = false;
}

bool Scheduler::RequestDueChecks(absl::Time now) {
  const absl::Duration interval = failures_.health_check_interval;
  if (interval <= absl::ZeroDuration()) return false;
  bool any = false;
  for (auto& [id, m] : models_) {
    if (m.probe == nullptr) continue;
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      DeviceUse& use = m.use[slot];
      if (!m.runs_on[slot] || use.check_requested || use.checking ||
          use.last_check == absl::InfinitePast() || use.last_check + interval > now) {
        continue;
      }
      if (m.backend->Instances(devices_[slot]).total == 0) {
        use.last_check = absl::InfinitePast();  // nothing loaded: the next load starts the wait
        continue;
      }
      use.check_requested = true;
      any = true;
    }
  }
  return any;
}

bool Scheduler::ChecksPending() const {
  for (const auto& [id, m] : models_) {
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      const DeviceUse& use = m.use[slot];
      if (use.checking) return true;
      if (use.check_requested && m.backend->Instances(devices_[slot]).total > 0) return true;
    }
  }
  return false;
}

absl::StatusOr<Health> Scheduler::CheckHealth(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  {
    MutexLock lock(&mu_);
    if (num_workers_ > 0 && !stopping_) {
      for (auto& [id, m] : models_) {
        if (m.probe == nullptr) continue;
        for (size_t slot = 0; slot < devices_.size(); ++slot) {
          if (m.runs_on[slot] && m.backend->Instances(devices_[slot]).total > 0) {
            m.use[slot].check_requested = true;
          }
        }
      }
      WakeWaiting();
      if (!mu_.AwaitWithDeadline(
              [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !ChecksPending(); }, deadline)) {
        return absl::DeadlineExceededError(absl::StrCat(
            "health checks were still waiting or running after ", absl::FormatDuration(timeout)));
      }
    }
  }
  return Stats().health;
}

void Scheduler::FillHealth(WorkerPoolStats& stats) const {
  const absl::Time now = clock_->Now();
  auto pressure = [&](const Device& device) -> std::string {
    for (const DeviceMemoryStats& d : stats.devices) {
      if (d.device == device && d.budget_bytes > 0 &&
          static_cast<double>(d.used_bytes) >=
              failures_.memory_pressure * static_cast<double>(d.budget_bytes)) {
        return absl::StrCat(device.ToString(),
                            " is under memory pressure: ", FormatBytes(d.used_bytes),
                            " of its budget of ", FormatBytes(d.budget_bytes), " used");
      }
    }
    return "";
  };
  for (WorkerStats& ws : stats.workers) {
    const WorkerSlot& s = W(ws.id);
    const bool in_one_call = s.state == WorkerState::kBusy || s.state == WorkerState::kLoading;
    if (s.state == WorkerState::kRestarting || s.state == WorkerState::kFailed) {
      Worsen(ws.health, HealthLevel::kUnhealthy,
             absl::StrCat(WorkerStateName(s.state), ": ",
                          s.transitions.empty() ? "" : s.transitions.back().reason));
    } else if (in_one_call && now - s.state_since > failures_.liveness_timeout) {
      Worsen(ws.health, HealthLevel::kUnhealthy,
             absl::StrCat(WorkerStateName(s.state), " in one call for ",
                          absl::FormatDuration(now - s.state_since)));
    }
    if (std::string reason = pressure(ws.device); !reason.empty()) {
      Worsen(ws.health, HealthLevel::kDegraded, reason);
    }
  }
  for (ModelStats& ms : stats.models) {
    const Model& m = M(ms.model_id);
    int unhealthy = 0, devices = 0;
    std::vector<std::string> reasons;
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      if (!m.runs_on[slot]) continue;
      ++devices;
      const DeviceUse& use = m.use[slot];
      ModelStats::OnDevice od;
      od.device = devices_[slot];
      od.circuit = use.breaker.state();
      od.circuit_since = use.breaker.since();
      od.circuit_openings = use.breaker.openings();
      od.restart_failures = use.restart.failures();
      od.next_restart = use.restart.next_try();
      od.gave_up = !use.load_error.ok();
      od.last_failure = std::string(use.restart.cause().message());
      od.health.last_check = use.last_check;
      od.health.last_check_passed = use.last_check_passed;
      if (od.gave_up) {
        Worsen(od.health, HealthLevel::kUnhealthy, std::string(use.load_error.message()));
      } else if (od.circuit == CircuitState::kOpen) {
        Worsen(od.health, HealthLevel::kUnhealthy,
               absl::StrCat("circuit open: ", use.breaker.open_reason()));
      } else if (use.restart.pending(now)) {
        Worsen(od.health, HealthLevel::kUnhealthy,
               absl::StrCat("restarting after ", use.restart.cause().message(), "; next load in ",
                            absl::FormatDuration(use.restart.next_try() - now)));
      } else if (od.circuit == CircuitState::kHalfOpen) {
        Worsen(od.health, HealthLevel::kDegraded, "circuit half-open: probing");
      }
      if (m.backend->Instances(devices_[slot]).total > 0) {
        if (std::string reason = pressure(od.device); !reason.empty()) {
          Worsen(od.health, HealthLevel::kDegraded, reason);
        }
      }
      if (od.health.level == HealthLevel::kUnhealthy) ++unhealthy;
      if (od.health.level != HealthLevel::kHealthy) {
        reasons.push_back(absl::StrCat(od.device.ToString(), ": ", od.health.reason));
      }
      ms.health.last_check = std::max(ms.health.last_check, use.last_check);
      ms.health.last_check_passed = ms.health.last_check_passed && use.last_check_passed;
      ms.on_devices.push_back(std::move(od));
    }
    // Unhealthy when no device can serve it; degraded when some device is not healthy.
    if (!reasons.empty()) {
      Worsen(ms.health, unhealthy == devices ? HealthLevel::kUnhealthy : HealthLevel::kDegraded,
             absl::StrJoin(reasons, "; "));
    }
    if (std::string slow = m.latency.SlowReason(failures_.latency_factor); !slow.empty()) {
      Worsen(ms.health, HealthLevel::kDegraded, slow);
    }
    ms.latency_baseline = m.latency.baseline().value_or(absl::ZeroDuration());
    ms.latency_p99 = m.latency.RecentP99();
  }
  for (const WorkerStats& ws : stats.workers) {
    if (ws.health.level != HealthLevel::kHealthy) {
      Worsen(stats.health, ws.health.level, absl::StrCat("worker ", ws.id, ": ", ws.health.reason));
    }
  }
  for (const ModelStats& ms : stats.models) {
    if (ms.health.level != HealthLevel::kHealthy) {
      Worsen(stats.health, ms.health.level, absl::StrCat(ms.model_id, ": ", ms.health.reason));
    }
  }
}

}  // namespace workers_internal
}  // namespace modelpool
