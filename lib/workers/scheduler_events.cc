// Worker states and what the scheduler tells the outside: listener events and log lines,
// delivered once the lock is released (Note [Events]).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/workers/scheduler.h"

namespace modelpool::workers_internal {

// Changes of state a worker's statistics keep.
constexpr size_t kTransitionsKept = 16;

void Scheduler::SetState(int w, WorkerState state, std::string reason) {
  WorkerSlot& s = W(w);
  const WorkerState from = s.state;
  if (from == state) return;
  const absl::Time now = clock_->Now();
  if (!IsWorkerTransitionAllowed(from, state)) {
    ++invalid_transitions_;
    LogLater(LogSeverity::kError,
             absl::StrCat("worker ", s.id, " went from ", WorkerStateName(from), " to ",
                          WorkerStateName(state), ", which its state machine does not allow"));
  }
  s.state = state;
  s.state_since = now;
  s.transitions.push_back({from, state, now, reason});
  if (s.transitions.size() > kTransitionsKept) s.transitions.pop_front();
  if (LogLevel() == LogSeverity::kDebug) {
    LogLater(LogSeverity::kDebug,
             absl::StrCat("worker ", s.id, " on ", devices_[s.slot].ToString(), ": ",
                          WorkerStateName(from), " -> ", WorkerStateName(state),
                          reason.empty() ? "" : absl::StrCat(" (", reason, ")")));
  }
  if (!listeners_.empty()) {
    Emit([e = WorkerStateChange{s.id, devices_[s.slot], s.model, from, state, now,
                                std::move(reason)}](WorkerPoolListener& l) {
      l.OnWorkerStateChanged(e);
    });
  }
}

void Scheduler::Emit(std::function<void(WorkerPoolListener&)> event) {
  if (!listeners_.empty()) events_.push_back(std::move(event));
}

void Scheduler::EmitModel(void (WorkerPoolListener::*hook)(const ModelEvent&),
                          const std::string& model, int slot, int instances) {
  if (listeners_.empty()) return;
  Emit([hook, e = ModelEvent{model, devices_[slot], instances, clock_->Now()}](
           WorkerPoolListener& l) { (l.*hook)(e); });
}

void Scheduler::LogLater(LogSeverity severity, std::string message) {
  if (severity >= LogLevel()) logs_.emplace_back(severity, std::move(message));
}

bool Scheduler::HasEvents() const { return !events_.empty() || !logs_.empty(); }

void Scheduler::Deliver(Endings& endings) {
  mu_.Lock();
  // Queued behind the events already emitted, so that listeners hear of a request's end before
  // its caller gets the result (Note [Events]).
  for (Ending& ending : endings) pending_endings_.push_back(std::move(ending));
  endings.clear();
  if (delivering_) {  // the thread delivering takes these too
    mu_.Unlock();
    return;
  }
  delivering_ = true;
  uint64_t threw = 0;
  while (HasEvents() || !pending_endings_.empty()) {
    std::vector<std::function<void(WorkerPoolListener&)>> events;
    events.swap(events_);
    std::vector<std::pair<LogSeverity, std::string>> logs;
    logs.swap(logs_);
    Endings ended;
    ended.swap(pending_endings_);
    const std::vector<std::shared_ptr<WorkerPoolListener>> listeners = listeners_;
    mu_.Unlock();
    for (const auto& [severity, message] : logs) {
      try {
        Log(severity, message);
      } catch (...) {
        ++threw;  // the application's log sink
      }
    }
    for (const auto& event : events) {
      for (const auto& listener : listeners) {
        try {
          event(*listener);
        } catch (...) {
          ++threw;  // the pool goes on; Stats() counts it
        }
      }
    }
    threw += Flush(ended);
    mu_.Lock();
  }
  delivering_ = false;
  callback_errors_ += threw;
  mu_.Unlock();
}

void Scheduler::AddListener(std::shared_ptr<WorkerPoolListener> listener) {
  if (listener == nullptr) return;
  MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

void Scheduler::RemoveListener(const WorkerPoolListener* listener) {
  MutexLock lock(&mu_);
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [&](const auto& l) { return l.get() == listener; }),
                   listeners_.end());
}

}  // namespace modelpool::workers_internal
