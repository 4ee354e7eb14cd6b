// The worker's states and the transitions allowed between them.
#include "modelpool/workers/worker_pool_stats.h"

namespace modelpool {

const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kIdle:
      return "idle";
    case WorkerState::kLoading:
      return "loading";
    case WorkerState::kBusy:
      return "busy";
    case WorkerState::kSwitching:
      return "switching";
    case WorkerState::kDraining:
      return "draining";
    case WorkerState::kRestarting:
      return "restarting";
    case WorkerState::kFailed:
      return "failed";
    case WorkerState::kStopped:
      return "stopped";
  }
  return "unknown";
}

// Note [Worker transitions]
// A worker starts (kStarting), then waits (kIdle, or kDraining once the pool shuts down) and
// works: it hands back one model's instance to serve another (kSwitching), loads (kLoading) and
// runs requests and checks (kBusy). A failed load or a dropped instance makes it kRestarting
// until the restart's backoff has passed, kFailed after the last attempt allowed; either may
// take other work meanwhile. A hung thread is replaced: the worker goes from kBusy to kRestarting
// and its new thread from there to kIdle. kStopped is final.
bool IsWorkerTransitionAllowed(WorkerState from, WorkerState to) {
  using S = WorkerState;
  if (from == to || from == S::kStopped) return false;
  switch (to) {
    case S::kStarting:
      return false;
    case S::kIdle:
      return from != S::kDraining;
    case S::kLoading:
      return from != S::kStarting && from != S::kBusy;
    case S::kBusy:
      return from != S::kStarting;
    case S::kSwitching:
      return from != S::kStarting && from != S::kLoading && from != S::kSwitching;
    case S::kDraining:
      return true;
    case S::kRestarting:
      return from == S::kLoading || from == S::kBusy || from == S::kSwitching || from == S::kIdle ||
             from == S::kFailed || from == S::kDraining;
    case S::kFailed:
      return from == S::kLoading || from == S::kBusy || from == S::kRestarting;
    case S::kStopped:
      return true;
  }
  return false;
}

}  // namespace modelpool
