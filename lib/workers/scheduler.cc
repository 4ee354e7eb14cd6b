#include "lib/workers/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "modelpool/base/bytes.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool::workers_internal {
namespace {

std::string DeviceList(const std::vector<Device>& devices) {
  return absl::StrJoin(devices, ",",
                       [](std::string* out, const Device& d) { out->append(d.ToString()); });
}

}  // namespace

Scheduler::Scheduler(Options options)
    : settings_(std::move(options.settings)),
      devices_(std::move(options.devices)),
      clock_(options.clock),
      governor_(std::move(options.governor)),
      policy_(std::move(options.policy)),
      max_queued_(options.max_queued_requests),
      load_timeout_(options.load_timeout),
      faults_(std::move(options.faults)),
      num_workers_(settings_.worker_pool
                       ? static_cast<int>(devices_.size()) * settings_.workers_per_device
                       : 0) {
  {
    MutexLock lock(&mu_);
    device_loading_.assign(devices_.size(), false);
    random_.seed(std::random_device()());
    const absl::Time now = clock_->Now();
    for (int w = 0; w < num_workers_; ++w) {
      WorkerSlot slot;
      slot.id = w;
      slot.slot = w / settings_.workers_per_device;
      slot.state_since = now;
      slot.last_activity = now;
      workers_.push_back(std::move(slot));
      worker_cvs_.push_back(std::make_unique<CondVar>());
    }
  }
  clock_->AddListener(this);
  governor_->AddListener(this);
  {
    MutexLock lock(&mu_);
    for (int w = 0; w < num_workers_; ++w) {
      threads_.emplace_back([this, w, lifeline = lifeline_] { Serve(w, 0, lifeline); });
    }
  }
  if (num_workers_ > 0) timer_ = std::thread([this] { TimerLoop(); });
}

Scheduler::~Scheduler() {
  Shutdown(absl::ZeroDuration());
  {
    // Threads given up on leave without touching what follows (Note [Hung calls]).
    MutexLock lock(&lifeline_->mu);
    lifeline_->alive = false;
  }
  governor_->RemoveListener(this);
  clock_->RemoveListener(this);
}

absl::Status Scheduler::AddModel(std::string id, std::shared_ptr<ModelBackend> backend,
                                 const ModelOptions& options, std::shared_ptr<const RunFn> probe) {
  if (id.empty()) return absl::InvalidArgumentError("a model id cannot be empty");
  if (backend->governor() != governor_) {
    return absl::FailedPreconditionError(absl::StrCat(
        id,
        " takes its memory from another governor than the worker pool's: give the manager "
        "and the pool the same device inventory (or governor)"));
  }
  const std::vector<Device> model_devices = backend->devices();
  Model model;
  model.runs_on.assign(devices_.size(), false);
  model.use.resize(devices_.size());
  bool any = false;
  for (size_t slot = 0; slot < devices_.size(); ++slot) {
    const Device& d = devices_[slot];
    const bool used =
        std::find(model_devices.begin(), model_devices.end(), d) != model_devices.end();
    const bool allowed =
        options.affinity != ModelOptions::Affinity::kRequire || d == options.device;
    model.runs_on[slot] = used && allowed;
    any = any || model.runs_on[slot];
    if (options.affinity == ModelOptions::Affinity::kPrefer && d == options.device) {
      model.preferred = static_cast<int>(slot);
    }
  }
  if (!any) {
    return absl::FailedPreconditionError(
        absl::StrCat(id, " runs on ", DeviceList(model_devices),
                     options.affinity == ModelOptions::Affinity::kRequire
                         ? absl::StrCat(" and requires ", options.device.ToString())
                         : "",
                     " but the worker pool's devices are ", DeviceList(devices_)));
  }
  model.options = options;
  model.max_instances = options.max_instances > 0               ? options.max_instances
                        : settings_.max_instances_per_model > 0 ? settings_.max_instances_per_model
                                                                : backend->max_instances();
  model.max_concurrent =
      options.max_concurrent > 0 ? options.max_concurrent : settings_.max_concurrent_per_model;
  model.max_batch_tokens =
      options.max_batch_tokens > 0 ? options.max_batch_tokens : settings_.max_batch_tokens;
  if (options.fallback_model == id) {
    return absl::InvalidArgumentError(absl::StrCat(id, " cannot be its own fallback"));
  }
  model.stats.model_id = id;
  model.backend = std::move(backend);
  model.probe = std::move(probe);
  MutexLock lock(&mu_);
  if (models_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("a model is already registered as ", id));
  }
  model.evictions_seen = model.backend->Evictions();
  models_.emplace(std::move(id), std::move(model));
  return absl::OkStatus();
}

void Scheduler::CountMerged(const std::string& model) {
  MutexLock lock(&mu_);
  auto it = models_.find(model);
  if (it != models_.end()) ++it->second.stats.merged;
}

JobId Scheduler::Submit(const std::string& model, std::type_index type, Task task,
                        const SubmitOptions& options) {
  Endings endings;
  JobId id = 0;
  bool direct = false;
  {
    MutexLock lock(&mu_);
    id = next_id_++;
    auto owned = std::make_unique<QueuedJob>();
    QueuedJob* job = owned.get();
    job->id = id;
    job->model = model;
    job->priority_class = options.priority_class;
    job->priority = options.priority;
    job->deadline = options.deadline;
    job->tokens = std::max<int64_t>(1, options.tokens);
    job->execution_timeout = options.execution_timeout.value_or(failures_.execution_timeout);
    if (job->execution_timeout <= absl::ZeroDuration()) {
      job->execution_timeout = absl::InfiniteDuration();
    }
    job->task = std::move(task);
    job->entered.fill(absl::InfinitePast());
    job->entered[static_cast<int>(JobState::kPending)] = clock_->Now();
    live_.emplace(id, std::move(owned));
    absl::Status refused = Admit(model, type, *job);
    if (refused.code() == absl::StatusCode::kResourceExhausted && FallBack(job, refused)) {
      refused = Admit(job->model, type, *job);
    }
    if (!refused.ok()) {
      const bool late = refused.code() == absl::StatusCode::kDeadlineExceeded;
      auto it = models_.find(model);
      if (it != models_.end()) ++(late ? it->second.stats.expired : it->second.stats.rejected);
      const JobState state = late                                             ? JobState::kExpired
                             : refused.code() == absl::StatusCode::kCancelled ? JobState::kCancelled
                                                                              : JobState::kFailed;
      End(job, state, refused, /*ran=*/false, endings, /*already_counted=*/true);
    } else {
      ++M(job->model).stats.submitted;
      if (settings_.worker_pool) {
        Enqueue(job);
      } else {
        direct = true;
      }
    }
  }
  Deliver(endings);
  if (direct) RunDirect(id);
  return id;
}

absl::Status Scheduler::Admit(const std::string& model, std::type_index type,
                              const QueuedJob& job) {
  auto it = models_.find(model);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model ", model));
  const Model& m = it->second;
  if (m.backend->type() != type) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request's model type does not match ", model));
  }
  if (stopping_) return absl::CancelledError("the worker pool is shutting down");
  if (job.deadline <= clock_->Now()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the request's deadline passed before it was submitted to ", model));
  }
  if (queue_.size() >= max_queued_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the worker pool's queue is full (", max_queued_, " requests)"));
  }
  if (settings_.worker_pool) MODELPOOL_RETURN_IF_ERROR(Unavailable(model));
  if (settings_.worker_pool && Serving(model, -1) == 0 && TotalInstances(m) == 0) {
    bool fits = false;
    std::vector<std::string> budgets;
    for (size_t slot = 0; slot < devices_.size() && !fits; ++slot) {
      if (!m.runs_on[slot]) continue;
      const int64_t need = m.backend->NextInstanceBytes(devices_[slot]);
      const int64_t budget = governor_->BudgetBytes(devices_[slot]);
      fits = need <= budget;
      budgets.push_back(absl::StrCat(devices_[slot].ToString(), " has a budget of ",
                                     FormatBytes(budget), " and it needs ", FormatBytes(need)));
    }
    if (!fits) {
      return absl::ResourceExhaustedError(
          absl::StrCat(model, " does not fit any of its devices even with nothing else loaded: ",
                       absl::StrJoin(budgets, "; ")));
    }
  }
  return absl::OkStatus();
}

void Scheduler::Enqueue(QueuedJob* job) {
  job->seq = next_seq_++;
  job->queued_at = clock_->Now();
  // Workers that serve nothing yet take the model of the first request they could run.
  for (WorkerSlot& w : workers_) {
    if (w.model.empty() && M(job->model).runs_on[w.slot]) w.model = job->model;
  }
  if (settings_.load_balancing == LoadBalancing::kRoundRobin) {
    std::vector<int> serving;
    for (const WorkerSlot& w : workers_) {
      if (w.model == job->model && CanTake(w.id, job->model)) serving.push_back(w.id);
    }
    if (!serving.empty()) job->pin = serving[M(job->model).round_robin++ % serving.size()];
  }
  WakeTimerFor(job->deadline);
  SetJobState(job, JobState::kQueued);
  queue_.Push(job);
  WakeFor(*job);
  if (job->task.joinable != nullptr) WakeJoining(*job);
}

void Scheduler::Requeue(QueuedJob* job, Endings& endings) {
  if (job->cancel_requested) {
    End(job, JobState::kCancelled, absl::CancelledError("cancelled by Cancel()"), false, endings);
    return;
  }
  job->worker = -1;
  job->device.reset();
  SetJobState(job, JobState::kQueued);
  queue_.Push(job);
  WakeTimerFor(job->deadline);  // it was out of the timer's sight while a worker had it
  WakeFor(*job);
}

void Scheduler::SetJobState(QueuedJob* job, JobState state) {
  job->state = state;
  job->entered[static_cast<int>(state)] = clock_->Now();
}

void Scheduler::End(QueuedJob* job, JobState state, const absl::Status& status, bool ran,
                    Endings& endings, bool already_counted) {
  SetJobState(job, state);
  job->status = UnsharedCopy(status);  // Note [Statuses that cross threads]
  auto it = models_.find(job->model);
  if (it != models_.end() && !already_counted) {
    ModelStats& stats = it->second.stats;
    switch (state) {
      case JobState::kSucceeded:
        ++stats.succeeded;
        break;
      case JobState::kExpired:
        ++stats.expired;
        break;
      case JobState::kCancelled:
        ++stats.cancelled;
        break;
      default:
        ++stats.failed;
        break;
    }
  }
  memory_waiters_.erase(std::remove(memory_waiters_.begin(), memory_waiters_.end(), job),
                        memory_waiters_.end());
  JobInfo info = InfoOf(*job);
  if (settings_.job_history > 0) {
    ended_[job->id] = info;
    ended_[job->id].status = UnsharedCopy(info.status);
    ended_order_.push_back(job->id);
    while (static_cast<int>(ended_order_.size()) > settings_.job_history) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
  }
  if (!listeners_.empty()) {
    Emit([info = std::move(info)](WorkerPoolListener& l) { l.OnJobEnded(info); });
  }
  endings.push_back({std::move(job->task), UnsharedCopy(status), ran});
  live_.erase(job->id);
  if (job_waiters_ > 0) job_ended_.SignalAll();
}

void Scheduler::FailModel(const std::string& model, const absl::Status& status, Endings& endings) {
  for (QueuedJob* job : queue_.All()) {
    if (job->model != model) continue;
    queue_.Remove(job);
    End(job, JobState::kFailed, status, /*ran=*/false, endings);
  }
}

JobInfo Scheduler::InfoOf(const QueuedJob& job) const {
  JobInfo info;
  info.id = job.id;
  info.model_id = job.model;
  info.priority = job.priority_class;
  info.state = job.state;
  info.status = UnsharedCopy(job.status);
  info.tokens = job.tokens;
  info.worker = job.worker;
  info.device = job.device;
  info.deadline = job.deadline;
  info.entered = job.entered;
  return info;
}

uint64_t Scheduler::Flush(Endings& endings) {
  uint64_t threw = 0;
  for (Ending& ending : endings) {
    try {
      if (ending.ran) {
        ending.task.publish();
      } else {
        ending.task.fail(std::move(ending.status));
      }
    } catch (...) {
      ++threw;  // a caller's `not_run` callback: the request has ended all the same
    }
  }
  endings.clear();
  return threw;
}

void Scheduler::RunDirect(JobId id) {
  QueuedJob* job = nullptr;
  std::shared_ptr<ModelBackend> backend;
  std::shared_ptr<CallCounters> counters;
  {
    MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return;
    job = it->second.get();
    backend = M(job->model).backend;
    counters = M(job->model).counters;
    SetJobState(job, JobState::kRunning);
  }
  // The job is this thread's until it ends: it is in no queue and cannot be cancelled running.
  absl::StatusOr<Held> instance = backend->AcquireAny(load_timeout_);
  absl::Status status = instance.status();
  const absl::Time start = absl::Now();
  if (instance.ok()) {
    ModelCall call(job->model, devices_.front(), faults_, backend, counters, failures_.oom_split);
    status = (*job->task.run)((*instance)->get(), call);
  }
  const absl::Duration duration = absl::Now() - start;
  instance = Held();
  Endings endings;
  {
    MutexLock lock(&mu_);
    if (instance.ok()) {
      const int64_t rows = job->task.joinable != nullptr ? job->task.joinable->rows() : 1;
      EmitBatch(job->model, 0, -1, 1, rows, job->tokens, duration);
    }
    End(job, status.ok() ? JobState::kSucceeded : JobState::kFailed, status, instance.ok(),
        endings);
  }
  Deliver(endings);
}

absl::StatusOr<JobInfo> Scheduler::Known(JobId id) const {
  if (auto it = live_.find(id); it != live_.end()) return InfoOf(*it->second);
  if (auto it = ended_.find(id); it != ended_.end()) {
    JobInfo info = it->second;
    info.status = UnsharedCopy(info.status);
    return info;
  }
  return absl::NotFoundError(
      absl::StrCat("no job ", id, " (never submitted here, or older than the job history)"));
}

absl::StatusOr<JobInfo> Scheduler::Poll(JobId id) const {
  MutexLock lock(&mu_);
  return Known(id);
}

absl::StatusOr<JobInfo> Scheduler::Wait(JobId id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  ++job_waiters_;
  while (live_.count(id) != 0 && absl::Now() < deadline) {
    mu_.WaitWithDeadline(&job_ended_, deadline);
  }
  --job_waiters_;
  if (auto it = live_.find(id); it != live_.end()) {
    return absl::DeadlineExceededError(absl::StrCat("job ", id, " is still ",
                                                    JobStateName(it->second->state), " after ",
                                                    absl::FormatDuration(timeout)));
  }
  return Known(id);
}

absl::Status Scheduler::Cancel(JobId id) {
  Endings endings;
  {
    MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it == live_.end()) {
      if (ended_.count(id) != 0) {
        return absl::FailedPreconditionError(absl::StrCat("job ", id, " has already ended"));
      }
      return absl::NotFoundError(absl::StrCat("no job ", id));
    }
    QueuedJob* job = it->second.get();
    if (job->state == JobState::kRunning) {
      return absl::FailedPreconditionError(absl::StrCat("job ", id, " is running: it will finish"));
    }
    if (job->worker >= 0) {
      job->cancel_requested = true;  // a worker took it: it ends when the worker looks again
    } else {
      queue_.Remove(job);
      End(job, JobState::kCancelled, absl::CancelledError("cancelled by Cancel()"),
          /*ran=*/false, endings);
    }
  }
  Deliver(endings);
  return absl::OkStatus();
}

void Scheduler::Shutdown(absl::Duration drain_timeout) {
  Endings endings;
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      drain_deadline_ = absl::Now() + drain_timeout;
    }
    for (size_t w = 0; w < workers_.size(); ++w) Wake(static_cast<int>(w));
    WakeTimer();
  }
  {
    MutexLock join_lock(&join_mu_);
    if (joined_) return;
    std::vector<std::thread> threads;
    {
      MutexLock lock(&mu_);
      // Workers drain the queue until the deadline; a call still running then is given up on
      // (Note [Hung calls]); a load or a hand-back in progress is waited for.
      const absl::Time deadline = drain_deadline_;
      mu_.AwaitWithDeadline([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return AllStopped(); },
                            deadline);
      for (size_t w = 0; w < workers_.size(); ++w) {
        if (W(static_cast<int>(w)).in_call) {
          Abandon(static_cast<int>(w),
                  absl::CancelledError(absl::StrCat(
                      "the worker pool shut down while the request ran, past the drain deadline (",
                      absl::FormatDuration(drain_timeout), "); its result is discarded")),
                  endings);
        }
      }
      mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return AllStopped(); });
      threads.swap(threads_);
    }
    for (std::thread& thread : threads) {
      if (thread.joinable()) thread.join();
    }
    {
      MutexLock lock(&mu_);
      timer_stop_ = true;
      WakeTimer();
    }
    if (timer_.joinable()) timer_.join();
    {
      MutexLock lock(&mu_);
      for (QueuedJob* job : queue_.All()) {
        queue_.Remove(job);
        End(job, JobState::kCancelled,
            absl::CancelledError("the worker pool shut down before the request ran"),
            /*ran=*/false, endings);
      }
      // Threads given up on may never return: none is waited for (Note [Hung calls]).
      for (Orphan& orphan : orphans_) orphan.thread.detach();
      orphans_.clear();
    }
    joined_ = true;
  }
  Deliver(endings);
}

bool Scheduler::AllStopped() const {
  for (const WorkerSlot& w : workers_) {
    if (w.state != WorkerState::kStopped) return false;
  }
  return true;
}

}  // namespace modelpool::workers_internal
