#ifndef MODELPOOL_LIB_WORKERS_SCHEDULER_H_
#define MODELPOOL_LIB_WORKERS_SCHEDULER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/workers/circuit_breaker.h"
#include "lib/workers/job_queue.h"
#include "lib/workers/latency_tracker.h"
#include "lib/workers/restart_backoff.h"
#include "lib/workers/scheduling_policy.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/logging.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/workers/fault_injector.h"
#include "modelpool/workers/internal/model_backend.h"
#include "modelpool/workers/internal/model_call.h"
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
//
// Note [Hung calls]
// A request (or a health check) that runs past its execution timeout, or is still running at
// shutdown past the drain deadline, is given up on: its job ends at once, and its worker gets a
// new thread (its generation moves on) while the old one stays in the model call. The old
// thread holds what the call needs (the run function, shared with the job; its `ModelCall`; the
// instance), so the job's record may go. When the call returns, the thread looks through the
// lifeline: if the scheduler still lives, it sees that its generation has moved on and leaves
// (unloading the instance, which may be broken, discarding the result, and waking the
// workers: the instance no longer counts against its model's limit); if the scheduler is gone,
// it leaves without touching it. The lifeline's lock is taken before `mu_`, and the
// destructor takes it to mark the scheduler gone, so a returning thread never touches a
// scheduler being destroyed.
//
// Note [Events]
// Listener events and log lines are made under the lock and delivered once it is released, by
// one thread at a time (`delivering_`), in order; a thread that finds another delivering leaves
// its events to it. So no listener (and no log sink, which is the application's code) is ever
// called with a pool lock held, and a listener may call the pool. Ended requests queue behind
// the events in the same way: their callers get their results after the listeners have heard
// of their ends, so that what listeners count never lags a result.
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
    // Null: no faults are injected.
    std::shared_ptr<FaultInjector> faults;
  };

  explicit Scheduler(Options options);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  // Shuts down without draining if `Shutdown()` was not called.
  ~Scheduler();

  // `probe` runs a deep check on an instance; null: the model is never checked.
  absl::Status AddModel(std::string id, std::shared_ptr<ModelBackend> backend,
                        const ModelOptions& options, std::shared_ptr<const RunFn> probe)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes `task`; it ends exactly once, possibly before this returns.
  JobId Submit(const std::string& model, std::type_index type, Task task,
               const SubmitOptions& options) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Preload(const std::string& model, int count) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobInfo> Poll(JobId id) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobInfo> Wait(JobId id, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Cancel(JobId id) ABSL_LOCKS_EXCLUDED(mu_);
  WorkerPoolStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Checks every loaded model on every device it is loaded on, waiting up to `timeout` (real
  // time) for the checks; then the pool's health.
  absl::StatusOr<Health> CheckHealth(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown(absl::Duration drain_timeout) ABSL_LOCKS_EXCLUDED(mu_, join_mu_);
  void AddListener(std::shared_ptr<WorkerPoolListener> listener) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveListener(const WorkerPoolListener* listener) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts a request that joined an identical one in flight instead of being submitted.
  void CountMerged(const std::string& model) ABSL_LOCKS_EXCLUDED(mu_);

  const std::vector<Device>& devices() const { return devices_; }
  int num_workers() const { return num_workers_; }

 private:
  using Held = std::unique_ptr<HeldInstance>;

  // A request that ends once the lock is released: the listeners are told (`info`), then
  // `publish` if it ran, else `fail(status)`.
  struct Ending {
    Task task;
    absl::Status status;
    bool ran = false;
  };
  using Endings = std::vector<Ending>;

  // One model on one device.
  struct DeviceUse {
    absl::Time last_used = absl::InfinitePast();
    absl::Time unload_tried = absl::InfinitePast();
    int acquiring = 0;  // workers about to lease an idle instance here
    bool loading = false;
    // Set when the device gave the model up (the last restart allowed failed); tried again only
    // by `Preload()`.
    absl::Status load_error;
    // Failures in a row here, and when the next load may start.
    RestartBackoff restart;
    bool restart_announced = false;  // the timer has woken the workers for the next try
    CircuitBreaker breaker;
    // Deep checks: one is asked for (on demand, on the interval, after a suspect error), one
    // runs, and the last one's time and outcome.
    bool check_requested = false;
    bool checking = false;
    absl::Time last_check = absl::InfinitePast();
    bool last_check_passed = true;
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
    std::shared_ptr<const RunFn> probe;  // null: never checked
    std::shared_ptr<CallCounters> counters = std::make_shared<CallCounters>();
    LatencyTracker latency;
    uint64_t evictions_seen = 0;  // evictions already told to the listeners
  };

  struct WorkerSlot {
    int id = 0;
    int slot = 0;  // index of its device in `devices_`
    WorkerState state = WorkerState::kStarting;
    absl::Time state_since;
    std::deque<WorkerTransition> transitions;  // the last few
    // The thread that serves it (see Note [Hung calls]); a replacement gets the next.
    uint64_t generation = 0;
    // In a model call (a request or a check) with the lock released, since when, and when it is
    // given up on (clock time).
    bool in_call = false;
    bool call_probe = false;  // the request probes a half-open circuit
    absl::Time call_started;
    absl::Time call_deadline = absl::InfiniteFuture();
    std::string checking;       // the model it checks, in a check
    bool check_held = false;    // its instance must pass a check before another request
    std::string restart_model;  // the model whose restart makes it kRestarting or kFailed
    std::string model;          // the model it serves or served last
    std::string held_model;     // the model it last held an instance of
    bool holding = false;
    QueuedJob* job = nullptr;        // taken, loading or running
    bool blocked = false;            // asleep, waiting for work
    bool joining = false;            // waiting for requests to join the one it runs
    std::vector<QueuedJob*> joined;  // running with `job`, joined to it
    bool wake_pending = false;
    std::deque<absl::Time> switches;  // within the last hour
    uint64_t switch_count = 0, completed = 0, errors = 0, hung = 0, threads = 1;
    absl::Time last_activity;
    std::string last_error;
  };

  struct Step {
    enum Kind { kExit, kWait, kRun, kCheck } kind = kWait;
    QueuedJob* job = nullptr;
    std::string model;  // kCheck: the model to check
  };

  // A model call a worker makes with the lock released: a request's or a check's.
  struct Call {
    std::shared_ptr<const RunFn> run;
    ModelCall model_call;
    QueuedJob* job = nullptr;  // null for a check
    std::string model;
    bool probe = false;  // a circuit breaker's probe
    absl::Time started;
    // A request's with others joined: the tasks of `job` and of those joined, in that order,
    // held for as long as the call runs (it may outlive the requests, Note [Hung calls]).
    std::vector<std::shared_ptr<JoinableTask>> joinables;
    std::vector<std::shared_ptr<const RunFn>> runs;  // theirs, to run one alone
    Device device;
    int worker = -1;
  };

  // What outlives the scheduler for the threads it gave up on (Note [Hung calls]).
  struct Lifeline {
    Mutex mu;
    bool alive ABSL_GUARDED_BY(mu) = true;
  };
  // A thread given up on, until its call returns (it then detaches itself and leaves).
  struct Orphan {
    int worker = 0;
    uint64_t generation = 0;
    std::thread thread;
  };

  // The worker loop (scheduler_worker.cc).
  void Serve(int w, uint64_t generation, std::shared_ptr<Lifeline> lifeline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the lock after a model call; false, without it, if the scheduler gave this thread up
  // meanwhile (or is gone).
  bool Reacquire(int w, uint64_t generation, Lifeline& lifeline)
      ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true, mu_);
  // A thread given up on has unloaded its instance: wakes the workers (if the scheduler lives).
  void LeaveOrphaned(Lifeline& lifeline) ABSL_LOCKS_EXCLUDED(mu_);
  Step Decide(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EnsureInstance(int w, QueuedJob* job, Held& held, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<Call> BeginRun(int w, QueuedJob* job, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishRun(int w, const Call& call, const JoinedRun& run, Endings& endings)
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
  // Runs `call` on `instance`: its request alone, or the requests joined (through the model
  // call's faults, splitting those that run out of memory); each request's status.
  static JoinedRun RunCall(Call& call, void* instance);
  // Tells the listeners of a call that ran `requests` with `rows` in `duration`.
  void EmitBatch(const std::string& model, int slot, int worker, int requests, int64_t rows,
                 int64_t tokens, absl::Duration duration) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseHeld(int w, Held& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unloads the held instance instead of handing it back: it may be broken.
  void DropHeld(int w, Held& held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ModelCall MakeModelCall(const std::string& model, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // kIdle, or kDraining once the pool shuts down.
  WorkerState Resting() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps until woken or `until` (real time).
  void WaitForWork(int w, absl::Time until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteSwitch(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MemoryGovernor::ReserveOptions ReserveFor(const QueuedJob* job, const std::string& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A load of `model` on `slot`, through the fault injector.
  absl::StatusOr<Held> Load(ModelBackend& backend, const std::string& model, int slot,
                            const MemoryGovernor::ReserveOptions& reserve) ABSL_LOCKS_EXCLUDED(mu_);
  // An instance of `model` was loaded on `slot`: counts it and tells the listeners, with the
  // evictions it took.
  void NoteLoaded(const std::string& model, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Faults (scheduler_faults.cc).
  void HandleLoadFailure(int w, QueuedJob* job, const absl::Status& status, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A failure of `model` on `w`'s device that counts towards its restart: a failed load, a
  // failed check, a hung call. Returns whether the device gave the model up.
  bool RecordFailure(int w, const std::string& model, const absl::Status& cause, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives up on `w`'s call (Note [Hung calls]): its job ends with `status`, its instance counts
  // as broken, and a new thread serves the worker (none once the pool shuts down).
  void Abandon(int w, const absl::Status& status, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The call of a thread given up on has returned; called on that thread, which then leaves.
  void OrphanReturned(int w, uint64_t generation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A request (or a hung check) ended: `failure` if it counts against the model. Feeds the
  // circuit breaker; a success ends the run of failures the restart backoff counts.
  void RecordOutcome(const std::string& model, int slot, bool probe, bool failure,
                     const absl::Status& cause, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnCircuitChange(const std::string& model, int slot, const CircuitBreaker::Change& change,
                       Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why no device can take `model`'s work now (every circuit open, or every device gave it
  // up), or OK.
  absl::Status Unavailable(const std::string& model) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the queued jobs of models no device can serve.
  void FailUnavailable(Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `job` (which ran out of memory) to its model's fallback; false if it has none.
  bool FallBack(QueuedJob* job, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double Uniform() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Health (scheduler_health.cc).
  // The model `w` should check now, or empty.
  std::string CheckDue(int w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<Call> BeginCheck(int w, const std::string& model, Held& held, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishCheck(int w, const Call& call, const absl::Status& status, Held& held,
                   Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks for the checks due by `now` on the interval; returns whether any.
  bool RequestDueChecks(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ChecksPending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillHealth(WorkerPoolStats& stats) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Worker states and events (scheduler_events.cc).
  // The one place a worker's state changes: checked, stamped, logged and told (Note [Worker
  // transitions] in worker_states.cc).
  void SetState(int w, WorkerState state, std::string reason = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(std::function<void(WorkerPoolListener&)> event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitModel(void (WorkerPoolListener::*hook)(const ModelEvent&), const std::string& model,
                 int slot, int instances) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogLater(LogSeverity severity, std::string message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasEvents() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `endings` and delivers the events (Note [Events]).
  void Deliver(Endings& endings) ABSL_LOCKS_EXCLUDED(mu_);

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
  // Ends each request; returns how many of their callbacks threw.
  static uint64_t Flush(Endings& endings);
  bool AllStopped() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  // Gives up on the calls past their deadline.
  void AbandonHung(absl::Time now, Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Half-opens the circuits whose cool-down has passed; returns whether any.
  bool ReopenCircuits(absl::Time now, Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a restart's backoff has passed since the last look.
  bool RestartsDue(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  // Whether the device gave `model` up or its restart waits.
  bool RestartWaits(const std::string& model, int slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkerSlot& W(int w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return workers_[w]; }
  const WorkerSlot& W(int w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return workers_[w]; }
  Model& M(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return models_.at(id); }
  const Model& M(const std::string& id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return models_.at(id);
  }

  const WorkerSettings settings_;
  const FailureSettings& failures_ = settings_.failures;
  const std::vector<Device> devices_;
  Clock* const clock_;
  const std::shared_ptr<MemoryGovernor> governor_;
  const std::unique_ptr<SchedulingPolicy> policy_;
  const int max_queued_;
  const absl::Duration load_timeout_;
  const std::shared_ptr<FaultInjector> faults_;
  const int num_workers_;
  const std::shared_ptr<Lifeline> lifeline_ = std::make_shared<Lifeline>();

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
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);  // restart jitter
  std::vector<std::shared_ptr<WorkerPoolListener>> listeners_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(WorkerPoolListener&)>> events_ ABSL_GUARDED_BY(mu_);
  Endings pending_endings_ ABSL_GUARDED_BY(mu_);  // ended, to publish after their events
  std::vector<std::pair<LogSeverity, std::string>> logs_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t callback_errors_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t invalid_transitions_ ABSL_GUARDED_BY(mu_) = 0;
  CondVar job_ended_;
  CondVar timer_cv_;
  std::vector<std::unique_ptr<CondVar>> worker_cvs_;  // fixed, one per worker

  // One per worker; a hung one's moves to `orphans_` and a new one takes its place.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<Orphan> orphans_ ABSL_GUARDED_BY(mu_);
  std::thread timer_;
  Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one Shutdown() joins the threads
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_SCHEDULER_H_
