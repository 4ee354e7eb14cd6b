// What the scheduler knows about workers, models and devices: the facts the policy decides on,
// and the statistics.
#include <algorithm>
#include <set>
#include <tuple>

#include "absl/time/clock.h"
#include "lib/workers/scheduler.h"

namespace modelpool::workers_internal {

const std::string& Scheduler::current_model(int worker) const { return W(worker).model; }

bool Scheduler::CanTake(int worker, const std::string& model_id) const {
  auto it = models_.find(model_id);
  if (it == models_.end()) return false;
  const Model& model = it->second;
  const WorkerSlot& w = W(worker);
  if (!model.runs_on[w.slot]) return false;
  if (!model.use[w.slot].breaker.Allows()) return false;
  if (w.holding && w.model == model_id) return true;
  if (model.max_concurrent > 0 && Serving(model_id, worker) >= model.max_concurrent) return false;
  if (SwitchCapped(worker, model_id)) return false;
  return IdleAvailable(model, w.slot) || MayLoad(model, w.slot);
}

bool Scheduler::NeedsLoad(int worker, const std::string& model_id) const {
  const WorkerSlot& w = W(worker);
  if (w.holding && w.model == model_id) return false;
  return !IdleAvailable(M(model_id), w.slot);
}

bool Scheduler::BetterPlacedElsewhere(int worker, const std::string& model_id) const {
  const Model& model = M(model_id);
  // Per device: whether the next instance fits without evicting.
  std::vector<int> fits(devices_.size(), -1);
  using Key = std::tuple<int, int, int, int64_t, int, int>;
  Key best_key;
  int best = -1;
  for (const WorkerSlot& x : workers_) {
    // Free: no request, and no instance or a lingering one of this model (asleep, or awake and
    // about to look for work).
    const bool free = x.job == nullptr && x.state != WorkerState::kStopped &&
                      (!x.holding || (x.model == model_id && x.blocked));
    if ((x.id != worker && !free) || !CanTake(x.id, model_id)) continue;
    const bool load = NeedsLoad(x.id, model_id);
    if (load && fits[x.slot] < 0) {
      const Device& device = devices_[x.slot];
      fits[x.slot] =
          governor_->RoomBytes(device) >= model.backend->NextInstanceBytes(device) ? 1 : 0;
    }
    const Key key{load ? 1 : 0,
                  model.preferred >= 0 && x.slot != model.preferred ? 1 : 0,
                  load && fits[x.slot] == 0 ? 1 : 0,
                  QueuedTokensOn(x.slot),
                  x.id == worker ? 0 : 1,
                  x.id};
    if (best < 0 || key < best_key) {
      best = x.id;
      best_key = key;
    }
  }
  if (best < 0 || best == worker) return false;
  to_wake_.push_back(best);
  return true;
}

bool Scheduler::IdleAvailable(const Model& model, int slot) const {
  return model.backend->Instances(devices_[slot]).idle - model.use[slot].acquiring > 0;
}

bool Scheduler::MayLoad(const Model& model, int slot) const {
  const DeviceUse& use = model.use[slot];
  if (device_loading_[slot]) return false;
  if (!use.load_error.ok() || use.restart.pending(clock_->Now())) return false;
  if (use.memory_blocked && use.blocked_epoch == memory_epoch_) return false;
  return model.max_instances <= 0 || TotalInstances(model) < model.max_instances;
}

int Scheduler::Serving(const std::string& model, int except_worker) const {
  int serving = 0;
  for (const WorkerSlot& w : workers_) {
    if (w.id == except_worker) continue;
    if ((w.holding && w.model == model) || (w.job != nullptr && w.job->model == model)) {
      ++serving;
    }
  }
  return serving;
}

int Scheduler::TotalInstances(const Model& model) const {
  int total = 0;
  for (size_t slot = 0; slot < devices_.size(); ++slot) {
    if (!model.runs_on[slot]) continue;
    total += model.backend->Instances(devices_[slot]).total + (model.use[slot].loading ? 1 : 0);
  }
  return total;
}

int Scheduler::SwitchesThisHour(int w) const {
  const absl::Time since = clock_->Now() - absl::Hours(1);
  const std::deque<absl::Time>& switches = W(w).switches;
  return static_cast<int>(switches.end() -
                          std::upper_bound(switches.begin(), switches.end(), since));
}

bool Scheduler::SwitchCapped(int w, const std::string& model) const {
  const int cap = settings_.max_switches_per_hour;
  return cap > 0 && !W(w).held_model.empty() && W(w).held_model != model &&
         SwitchesThisHour(w) >= cap;
}

int64_t Scheduler::QueuedTokensOn(int slot) const {
  int64_t tokens = 0;
  std::set<std::string> models;
  for (const WorkerSlot& w : workers_) {
    if (w.slot != slot) continue;
    if (w.job != nullptr) tokens += w.job->tokens;
    if (!w.model.empty()) models.insert(w.model);
  }
  for (const std::string& model : models) tokens += queue_.Tokens(model);
  return tokens;
}

bool Scheduler::RestartWaits(const std::string& model, int slot) const {
  auto it = models_.find(model);
  if (it == models_.end()) return false;
  const DeviceUse& use = it->second.use[slot];
  return !use.load_error.ok() || use.restart.pending(clock_->Now());
}

WorkerPoolStats Scheduler::Stats() const {
  WorkerPoolStats stats;
  stats.devices = governor_->Stats();
  MutexLock lock(&mu_);
  bool all_waiting = !workers_.empty();
  for (const WorkerSlot& w : workers_) {
    WorkerStats s;
    s.id = w.id;
    s.device = devices_[w.slot];
    s.model_id = w.model;
    s.state = w.state;
    s.state_since = w.state_since;
    s.transitions.assign(w.transitions.begin(), w.transitions.end());
    s.holds_instance = w.holding;
    s.queued = queue_.CountPinned(w.id);
    s.switches_this_hour = SwitchesThisHour(w.id);
    s.switches = w.switch_count;
    s.completed = w.completed;
    s.errors = w.errors;
    s.hung = w.hung;
    s.threads = w.threads;
    s.last_activity = w.last_activity;
    s.last_error = w.last_error;
    stats.workers.push_back(std::move(s));
    const bool stopped = w.state == WorkerState::kStopped;
    // A worker lingering with an instance is about to hand it back: not waiting on time.
    all_waiting = all_waiting &&
                  (stopped || (w.blocked && !w.wake_pending && w.job == nullptr && !w.holding));
  }
  for (const auto& [id, model] : models_) {
    ModelStats s = model.stats;
    for (size_t slot = 0; slot < devices_.size(); ++slot) {
      if (!model.runs_on[slot]) continue;
      const InstanceCount count = model.backend->Instances(devices_[slot]);
      if (count.total > 0) s.loaded.push_back({devices_[slot], count.total, count.idle});
    }
    s.workers = Serving(id, -1);
    s.queued = queue_.Count(id);
    s.evictions = model.backend->Evictions();
    s.out_of_memory = model.counters->out_of_memory.load(std::memory_order_relaxed);
    s.split_retries = model.counters->split_retries.load(std::memory_order_relaxed);
    stats.models.push_back(std::move(s));
  }
  stats.queue_depth = queue_.size();
  const bool loading =
      std::find(device_loading_.begin(), device_loading_.end(), true) != device_loading_.end();
  stats.waiting_on_time = all_waiting && !loading && !queue_.empty();
  stats.stuck_calls = static_cast<int>(orphans_.size());
  stats.invalid_transitions = invalid_transitions_;
  stats.callback_errors = callback_errors_;
  if (faults_ != nullptr) stats.faults = faults_->counts();
  FillHealth(stats);
  return stats;
}

}  // namespace modelpool::workers_internal
