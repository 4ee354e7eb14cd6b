#ifndef MODELPOOL_WORKERS_WORKER_POOL_STATS_H_
#define MODELPOOL_WORKERS_WORKER_POOL_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/devices/memory_governor.h"

namespace modelpool {

// What a worker thread is doing. Every change goes through one place in the scheduler, which
// stamps `WorkerStats::state_since`.
enum class WorkerState {
  kIdle,     // waiting for work it can take
  kLoading,  // loading its model for a request
  kBusy,     // running a request
  kFailed,   // its last load failed (it still takes other models' work)
  kStopped,  // shut down
};

// "idle", "loading", "busy", "failed", "stopped".
const char* WorkerStateName(WorkerState state);

struct WorkerStats {
  int id = 0;
  Device device;
  // The model it serves or served last; empty if none yet.
  std::string model_id;
  WorkerState state = WorkerState::kIdle;
  absl::Time state_since;
  // Whether it holds (leases) an instance of its model now; a held instance is never evicted.
  bool holds_instance = false;
  // Requests waiting for this worker in particular (round-robin balancing).
  int queued = 0;
  int switches_this_hour = 0;
  uint64_t switches = 0;
  uint64_t completed = 0;  // requests it ran, whatever their outcome
  uint64_t errors = 0;     // of those, how many ended with an error
  absl::Time last_activity;
  std::string last_error;
};

struct ModelStats {
  struct Placement {
    Device device;
    int instances = 0;
    int idle = 0;
  };
  std::string model_id;
  // Where instances are loaded.
  std::vector<Placement> loaded;
  int workers = 0;  // serving it now (holding an instance or loading one)
  int queued = 0;
  int running = 0;
  uint64_t submitted = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;     // ran and returned an error (or threw), or could not be loaded
  uint64_t expired = 0;    // deadline passed before they started
  uint64_t cancelled = 0;  // by `Cancel()` or at shutdown
  uint64_t rejected = 0;   // refused at submission (queue full, shut down, wrong type)
  uint64_t loads = 0;      // instances this pool loaded
  uint64_t evictions = 0;  // its idle instances evicted to make room for another load
  uint64_t unloads = 0;    // its idle instances unloaded after their keep-alive
  uint64_t switches = 0;   // workers that switched to it from another model
  absl::Time last_used = absl::InfinitePast();
};

struct WorkerPoolStats {
  // Every device's budget and what is loaded there (all models that share the governor).
  std::vector<DeviceMemoryStats> devices;
  std::vector<ModelStats> models;
  std::vector<WorkerStats> workers;
  int queue_depth = 0;
  // Requests are queued and every worker waits: only time (deadlines, aging, switch limits) or
  // memory released outside this pool moves them.
  bool waiting_on_time = false;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_POOL_STATS_H_
