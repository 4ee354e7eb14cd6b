#ifndef MODELPOOL_LIB_WORKERS_SCHEDULER_H_
#define MODELPOOL_LIB_WORKERS_SCHEDULER_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/workers/job_queue.h"
#include "lib/workers/scheduling_policy.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/internal/listener_set.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/workers/internal/model_backend.h"
#include "modelpool/workers/job.h"
#include "modelpool/workers/worker_pool_listener.h"
#include "modelpool/workers/worker_pool_stats.h"
#include "modelpool/workers/worker_settings.h"

namespace modelpool::workers_internal {

// Scheduler
//
// The heart of the worker pool: the pool-wide queue, the worker threads and what they hold, the
// models and where they are loaded, the jobs from submission to their end, and a timer thread
// for what time decides (deadlines, keep-alive, aging, switch limits). What to run next and what
// to evict is the policy's decision (`SchedulingPolicy`); memory is the governor's.
//
// Note [Scheduler locking]
// One mutex guards everything here; each worker sleeps on its own condition variable, so a
// submission wakes only the workers that may take it. Requests run, instances load and unload,
// and requests end (their callbacks) with the lock released. Worker state lives in `workers_`
// and model state in `models_`, read and written through `W()` and `M()`, so that clang's
// thread-safety analysis checks every access of the worker loop. The jobs themselves are touched
// only with the lock held; a worker that took a job is the only one to touch it until it puts it
// back or ends it.
class Scheduler final : private SchedulerView,
                        private ClockListener,
                        private MemoryGovernor::Listener {
 public:
  struct Options {
    WorkerSettings settings;
    std::vector<Device> devices;
    Clock* clock = nullptr;
    std::shared_ptr<MemoryGovernor> governor;
    std::unique_ptr<SchedulingPolicy> policy;
    int max_queued_requests = 100000;
    absl::Duration load_timeout = absl::Minutes(10);
  };

  explicit Scheduler(Options options);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  // Shuts down without draining if `Shutdown()` was not called.
  ~Scheduler();

  absl::Status AddModel(std::string id, std::shared_ptr<ModelBackend> backend,
                        const ModelOptions& options) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes `task`; it ends exactly once, possibly before this returns.
  JobId Submit(const std::string& model, std::type_index type, Task task,
               const SubmitOptions& options) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Preload(const std::string& model, int count) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobInfo> Poll(JobId id) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobInfo> Wait(JobId id, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Cancel(JobId id) ABSL_LOCKS_EXCLUDED(mu_);
  WorkerPoolStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown(absl::Duration drain_timeout) ABSL_LOCKS_EXCLUDED(mu_, join_mu_);
  void AddListener(WorkerPoolListener* listener) { listeners_.Add(listener); }
  void RemoveListener(WorkerPoolListener* listener) { listeners_.Remove(listener); }

  const std::vector<Device>& devices() const { return devices_; }
  int num_workers() const { return static_cast<int>(threads_.size()); }

 private:
  using Held = std::unique_ptr<HeldInstance>;

  // A request that ends once the lock is released: the listeners are told (`info`), then
  // `publish` if it ran, else `fail(status)`.
  struct Ending {
    Task task;
    absl::Status status;
    bool ran = false;
    JobInfo info;
  };
  using Endings = std::vector<Ending>;

  // One model on one device.
  struct DeviceUse {
    absl::Time last_used = absl::InfinitePast();
    absl::Time unload_tried = absl::InfinitePast();
    int acquiring = 0;  // workers about to lease an idle instance here
    bool loading = false;
    // A load failed here (not for memory); tried again only by `Preload()`.
    absl::Status load_error;
    // A load failed for memory when the memory epoch was `blocked_epoch`; not tried again
    // before memory is released or `blocked_until` (see Note [Waiting for memory]).
    bool memory_blocked = false;
    uint64_t blocked_epoch = 0;
    absl::Time blocked_until = absl::InfinitePast();
  };

  struct Model {
    std::shared_ptr<ModelBackend> backend;
    // Indexed like `devices_`; false where the model does not run.
    std::vector<bool> runs_on;
    std::vector<DeviceUse> use;
    ModelOptions options;
    int max_instances = 0;         // 0: no limit
    int max_concurrent = 0;        // 0: no limit
    int64_t max_batch_tokens = 0;  // what requests joined together may add up to
    int preferred = -1;            // the device it prefers, -1 for none
    ModelStats stats;              // the counters; the rest is filled by Stats()
    uint64_t round_robin = 0;
  };

  struct WorkerSlot {
    int id = 0;
    int slot = 0;  // index of its device in `devices_`
    WorkerState state = WorkerState::kIdle;
    absl::Time state_since;
    std::string model;       // the model it serves or served last
    std::string held_model;  // the model it last held an instance of
    bool holding = false;
    QueuedJob* job = nullptr;  // taken, loading or running
    bool blocked = false;      // asleep, waiting for work
    bool joining = false;      // waiting for requests to join the one it runs
    bool wake_pending = false;
    std::deque<absl::Time> switches;  // within the last hour
    uint64_t switch_count = 0, completed = 0, errors = 0;
    absl::Time last_activity;
    std::string last_error;
  };

  struct Step {
    enum Kind { kExit, kWait, kRun } kind = kWait;
    QueuedJob* job = nullptr;
  };

  // The worker loop (scheduler_worker.cc).
  void Serve(int w) ABSL_LOCKS_EXCLUDED(mu_);
  Step Decide(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EnsureInstance(int w, QueuedJob* job, Held& held, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleLoadFailure(int w, QueuedJob* job, const absl::Status& status, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunJob(int w, QueuedJob* job, Held& held, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Joined requests (scheduler_join.cc): queued requests that join `batch` (its leader, the
  // job `w` runs, first), waiting up to the batch window when none are queued.
  void Join(int w, std::vector<QueuedJob*>& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the queued requests that may join `batch`, within `tokens` of `limit`; whether the
  // batch is full.
  bool TakeJoiners(int w, std::vector<QueuedJob*>& batch, int64_t& tokens, int64_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the workers waiting for requests to join theirs, if `job` might.
  void WakeJoining(const QueuedJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `batch` (requests a worker owns) on `instance` and tells the listeners.
  JoinedRun RunBatch(const std::vector<QueuedJob*>& batch, void* instance, int worker,
                     const Device& device) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseHeld(int w, Held& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps until woken or `until` (real time).
  void WaitForWork(int w, absl::Time until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteSwitch(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetState(int w, WorkerState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MemoryGovernor::ReserveOptions ReserveFor(const QueuedJob* job, const std::string& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Jobs (scheduler.cc).
  absl::Status Admit(const std::string& model, std::type_index type, const QueuedJob& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(QueuedJob* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a job a worker took back in the queue, or ends it if it was cancelled meanwhile.
  void Requeue(QueuedJob* job, Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetJobState(QueuedJob* job, JobState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `job` (in no queue) exactly once; its callback runs when `endings` are flushed.
  // `already_counted`: the caller has counted it in the model's statistics.
  void End(QueuedJob* job, JobState state, const absl::Status& status, bool ran, Endings& endings,
           bool already_counted = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailModel(const std::string& model, const absl::Status& status, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobInfo InfoOf(const QueuedJob& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What is known of job `id`, live or ended; `NotFound` otherwise.
  absl::StatusOr<JobInfo> Known(JobId id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunDirect(JobId id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status PreloadDirect(ModelBackend& backend, int count) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends what `endings` hold; call without the lock.
  void Flush(Endings& endings) ABSL_LOCKS_EXCLUDED(mu_);

  // Waking (scheduler.cc).
  void Wake(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeWaiting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeFor(const QueuedJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeTimer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the timer if `t` comes before what it sleeps until.
  void WakeTimerFor(absl::Time t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the waiting workers if a load waits for memory (it may fit now).
  void WakeIfMemoryBlocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnClockJump() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnMemoryReleased() override ABSL_LOCKS_EXCLUDED(mu_);

  // Time (scheduler_timer.cc).
  struct Unload {
    std::shared_ptr<ModelBackend> backend;
    std::string model;
    int slot = 0;
    int count = 0;
  };
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void ExpireDue(absl::Time now, Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Unload> DueUnloads(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PromoteAged(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RollSwitchWindows(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool UnblockMemory(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextEvent() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration KeepAlive(const Model& model, int slot) const;

  // Facts for the policy and the loop (scheduler_view.cc).
  absl::Time now() const override { return clock_->Now(); }
  absl::Duration aging_bound() const override { return settings_.aging_bound; }
  const JobQueue& queue() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_; }
  const std::string& current_model(int worker) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanTake(int worker, const std::string& model) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NeedsLoad(int worker, const std::string& model) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BetterPlacedElsewhere(int worker, const std::string& model) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleAvailable(const Model& model, int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool MayLoad(const Model& model, int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Serving(const std::string& model, int except_worker) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int TotalInstances(const Model& model) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int SwitchesThisHour(int w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SwitchCapped(int w, const std::string& model) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t QueuedTokensOn(int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Unservable(const std::string& model) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkerSlot& W(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return workers_[w]; }
  const WorkerSlot& W(int w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return workers_[w]; }
  Model& M(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return models_.at(id); }
  const Model& M(const std::string& id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return models_.at(id);
  }

  const WorkerSettings settings_;
  const std::vector<Device> devices_;
  Clock* const clock_;
  const std::shared_ptr<MemoryGovernor> governor_;
  const std::unique_ptr<SchedulingPolicy> policy_;
  const int max_queued_;
  const absl::Duration load_timeout_;

  mutable Mutex mu_;
  std::vector<WorkerSlot> workers_ ABSL_GUARDED_BY(mu_);  // fixed size
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
  JobQueue queue_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<JobId, std::unique_ptr<QueuedJob>> live_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<JobId, JobInfo> ended_ ABSL_GUARDED_BY(mu_);
  std::deque<JobId> ended_order_ ABSL_GUARDED_BY(mu_);
  std::vector<QueuedJob*> memory_waiters_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> device_loading_ ABSL_GUARDED_BY(mu_);
  JobId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t promoted_seq_ ABSL_GUARDED_BY(mu_) = 0;  // jobs up to here have aged
  uint64_t memory_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // bumped whenever memory may have come free
  int job_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // real time
  bool timer_stop_ ABSL_GUARDED_BY(mu_) = false;
  // The clock time the timer sleeps until; InfinitePast while it is awake.
  absl::Time timer_next_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Workers a view call found better placed for a load; woken after the decision.
  mutable std::vector<int> to_wake_ ABSL_GUARDED_BY(mu_);
  CondVar job_ended_;
  CondVar timer_cv_;
  std::vector<std::unique_ptr<CondVar>> worker_cvs_;  // fixed, one per worker

  base_internal::ListenerSet<WorkerPoolListener> listeners_;
  std::vector<std::thread> threads_;  // fixed at construction
  std::thread timer_;
  Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one Shutdown() joins the threads
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_SCHEDULER_H_
