#include "modelpool/workers/generic_worker_pool.h"

#include <algorithm>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/logging.h"
#include "modelpool/pool/pool_sizing.h"

namespace modelpool {

using workers_internal::HeldInstance;
using workers_internal::ModelBackend;
using workers_internal::Task;

const char* WorkerStateName(WorkerStatus::State state) {
  switch (state) {
    case WorkerStatus::State::kIdle:
      return "idle";
    case WorkerStatus::State::kLoading:
      return "loading";
    case WorkerStatus::State::kBusy:
      return "busy";
    case WorkerStatus::State::kFailed:
      return "failed";
    case WorkerStatus::State::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// A request waiting in a worker's queue. The heap puts the highest priority first and, among
// equals, the earliest submitted.
struct Queued {
  Task task;
  uint64_t seq = 0;
  std::string model_id;
};
bool RunsLater(const Queued& a, const Queued& b) {
  return a.task.priority != b.task.priority ? a.task.priority < b.task.priority : a.seq > b.seq;
}

// Requests to end with an error once the lock is released: ending one calls its callback,
// which may submit more.
using Endings = std::vector<std::pair<Task, absl::Status>>;
void End(Endings& endings) {
  for (auto& [task, status] : endings) task.fail(std::move(status));
  endings.clear();
}

}  // namespace

// Note [Worker pool locking]
// One mutex guards every worker's queue and state and the model table; each worker sleeps on
// its own condition variable, so a submission wakes only the worker it queued on. Requests
// run, and requests end, with the lock released.
class GenericWorkerPool::Impl {
 public:
  Impl(WorkerPoolOptions options, Settings settings, std::vector<Device> devices)
      : options_(std::move(options)), settings_(std::move(settings)), devices_(std::move(devices)) {
    if (!settings_.worker_pool) return;
    for (const Device& device : devices_) {
      for (int i = 0; i < settings_.workers_per_device; ++i) {
        auto worker = std::make_unique<Worker>();
        worker->id = static_cast<int>(workers_.size());
        worker->device = device;
        workers_.push_back(std::move(worker));
      }
    }
    for (auto& worker : workers_) {
      Worker* w = worker.get();
      w->thread = std::thread([this, w] { Serve(w); });
    }
  }

  ~Impl() { Shutdown(options_.shutdown_drain_timeout); }

  absl::Status AddBackend(std::string model_id, std::shared_ptr<ModelBackend> backend) {
    if (model_id.empty()) return absl::InvalidArgumentError("a model id cannot be empty");
    const std::vector<Device> model_devices = backend->devices();
    const bool shared =
        std::any_of(model_devices.begin(), model_devices.end(), [&](const Device& d) {
          return std::find(devices_.begin(), devices_.end(), d) != devices_.end();
        });
    if (!shared) {
      return absl::FailedPreconditionError(
          absl::StrCat(model_id, " runs on ", DeviceList(model_devices),
                       " but the worker pool's devices are ", DeviceList(devices_)));
    }
    MutexLock lock(&mu_);
    if (models_.count(model_id) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("a model is already registered as ", model_id));
    }
    Model& model = models_[model_id];
    model.backend = std::move(backend);
    model.totals.model_id = model_id;
    return absl::OkStatus();
  }

  void Dispatch(const std::string& model_id, std::type_index type, Task task) {
    Endings endings;
    std::shared_ptr<ModelBackend> direct;
    {
      MutexLock lock(&mu_);
      absl::Status refused = Admit(model_id, type, task);
      if (!refused.ok()) {
        endings.emplace_back(std::move(task), std::move(refused));
      } else if (!settings_.worker_pool) {
        direct = models_[model_id].backend;
      } else {
        Model& model = models_[model_id];
        std::vector<Worker*> candidates = WorkersOf(model_id);
        if (candidates.empty()) {
          AssignIdleWorkers(model_id, model);
          candidates = WorkersOf(model_id);
        }
        if (candidates.empty()) {
          ++model.totals.rejected;
          endings.emplace_back(
              std::move(task),
              absl::ResourceExhaustedError(absl::StrCat(
                  "no worker can serve ", model_id, ": every worker on ",
                  DeviceList(model.backend->devices()),
                  " serves another model or failed to load it (see Status(); PreloadModel "
                  "dedicates workers)")));
        } else {
          Worker* worker = Pick(model, candidates);
          ++model.totals.submitted;
          Push(worker, Queued{std::move(task), next_seq_++, model_id});
        }
      }
    }
    End(endings);
    if (direct != nullptr) RunDirect(model_id, *direct, std::move(task));
  }

  absl::Status PreloadModel(const std::string& model_id, int num_workers) {
    if (num_workers < 1) return absl::InvalidArgumentError("PreloadModel: num_workers < 1");
    std::shared_ptr<ModelBackend> backend;
    std::vector<Worker*> chosen;
    Endings endings;
    {
      MutexLock lock(&mu_);
      auto it = models_.find(model_id);
      if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model ", model_id));
      backend = it->second.backend;
      if (settings_.worker_pool) chosen = Dedicate(model_id, num_workers, endings);
    }
    End(endings);
    if (!settings_.worker_pool) return PreloadDirect(*backend, num_workers);
    if (chosen.empty()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("no worker on ", DeviceList(backend->devices()), " is free for ", model_id));
    }
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return std::all_of(chosen.begin(), chosen.end(), [&](Worker* w) {
        return w->attempted_model == model_id || w->model_id != model_id;
      });
    });
    for (Worker* w : chosen) {
      if (w->state == WorkerStatus::State::kFailed && w->model_id == model_id) {
        return absl::Status(
            w->load_error.code(),
            absl::StrCat("worker ", w->id, " on ", w->device.ToString(), " could not load ",
                         model_id, ": ", w->load_error.message()));
      }
    }
    return absl::OkStatus();
  }

  WorkerPoolStatus Status() const {
    MutexLock lock(&mu_);
    WorkerPoolStatus status;
    status.queue_depth = queued_;
    for (const auto& w : workers_) {
      WorkerStatus s;
      s.id = w->id;
      s.device = w->device;
      s.model_id = w->model_id;
      s.state = w->state;
      s.queued = static_cast<int>(w->queue.size());
      s.completed = w->completed;
      s.errors = w->errors;
      s.last_activity = w->last_activity;
      s.last_error = w->last_error;
      status.workers.push_back(std::move(s));
    }
    for (const auto& [id, model] : models_) {
      ModelTotals totals = model.totals;
      totals.workers = 0;
      totals.queued = 0;
      for (const auto& w : workers_) {
        if (w->model_id != id) continue;
        ++totals.workers;
        totals.queued += static_cast<int>(w->queue.size());
      }
      status.models.push_back(std::move(totals));
    }
    return status;
  }

  void Shutdown(absl::Duration drain_timeout) {
    {
      MutexLock lock(&mu_);
      if (!stopping_) {
        stopping_ = true;
        drain_deadline_ = absl::Now() + drain_timeout;
      }
      for (auto& w : workers_) w->cv.Signal();
    }
    MutexLock join_lock(&join_mu_);
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  const std::vector<Device>& devices() const { return devices_; }
  const Settings& settings() const { return settings_; }

 private:
  struct Worker {
    int id = 0;
    Device device;
    CondVar cv;
    std::thread thread;
    // Guarded by mu_ (not annotated: members of a struct the pool's mutex guards).
    std::string model_id;         // the model it serves
    std::string attempted_model;  // the model it last tried to hold (loaded or failed)
    absl::Status load_error;
    std::vector<Queued> queue;  // a heap, see RunsLater
    WorkerStatus::State state = WorkerStatus::State::kIdle;
    uint64_t completed = 0;
    uint64_t errors = 0;
    absl::Time last_activity = absl::Now();
    std::string last_error;
  };

  struct Model {
    std::shared_ptr<ModelBackend> backend;
    ModelTotals totals;
    uint64_t next_worker = 0;  // round-robin cursor
  };

  static std::string DeviceList(const std::vector<Device>& devices) {
    return absl::StrJoin(devices, ",",
                         [](std::string* out, const Device& d) { out->append(d.ToString()); });
  }

  // Whether `task` may be queued for `model_id`; counts the refusals it gives.
  absl::Status Admit(const std::string& model_id, std::type_index type, const Task& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = models_.find(model_id);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model ", model_id));
    ModelTotals& totals = it->second.totals;
    if (it->second.backend->type() != type) {
      ++totals.rejected;
      return absl::InvalidArgumentError(
          absl::StrCat("the request's model type does not match ", model_id));
    }
    if (stopping_) {
      ++totals.rejected;
      return absl::CancelledError("the worker pool is shutting down");
    }
    if (task.deadline <= absl::Now()) {
      ++totals.expired;
      return absl::DeadlineExceededError(
          absl::StrCat("the request's deadline passed before it was submitted to ", model_id));
    }
    if (queued_ >= options_.max_queued_requests) {
      ++totals.rejected;
      return absl::ResourceExhaustedError(absl::StrCat("the worker pool's queue is full (",
                                                       options_.max_queued_requests, " requests)"));
    }
    return absl::OkStatus();
  }

  bool CanServe(const Worker& w, const Model& model) const {
    const std::vector<Device> devices = model.backend->devices();
    return std::find(devices.begin(), devices.end(), w.device) != devices.end();
  }

  std::vector<Worker*> WorkersOf(const std::string& model_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Worker*> serving;
    for (const auto& w : workers_) {
      if (w->model_id == model_id && w->state != WorkerStatus::State::kFailed) {
        serving.push_back(w.get());
      }
    }
    return serving;
  }

  // A model's first request takes every worker that serves nothing yet on its devices.
  void AssignIdleWorkers(const std::string& model_id, const Model& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& w : workers_) {
      if (w->model_id.empty() && CanServe(*w, model)) Assign(w.get(), model_id);
    }
  }

  void Assign(Worker* w, const std::string& model_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    w->model_id = model_id;
    if (w->state == WorkerStatus::State::kFailed) {
      w->attempted_model.clear();  // try loading again
      w->state = WorkerStatus::State::kIdle;
    }
    w->cv.Signal();
  }

  // Chooses up to `n` workers for `model_id`: those already serving it, then idle ones, then
  // workers taken from models that keep at least one other; their queued requests move to
  // their model's remaining workers.
  std::vector<Worker*> Dedicate(const std::string& model_id, int n, Endings& endings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Model& model = models_[model_id];
    std::vector<Worker*> chosen;
    auto take = [&](auto&& eligible) {
      for (auto& w : workers_) {
        if (static_cast<int>(chosen.size()) >= n) return;
        if (!CanServe(*w, model) || std::count(chosen.begin(), chosen.end(), w.get()) != 0)
          continue;
        if (eligible(*w)) chosen.push_back(w.get());
      }
    };
    take([&](const Worker& w) { return w.model_id == model_id; });
    take([&](const Worker& w) { return w.model_id.empty(); });
    take([&](const Worker& w) ABSL_NO_THREAD_SAFETY_ANALYSIS {  // called with mu_ held
      return WorkersOf(w.model_id).size() > 1;
    });
    for (Worker* w : chosen) {
      if (w->model_id != model_id && !w->model_id.empty()) {
        const std::string old_model = w->model_id;
        w->model_id.clear();
        Reroute(
            w, old_model,
            absl::ResourceExhaustedError(absl::StrCat("no worker is left to serve ", old_model)),
            endings);
      }
      Assign(w, model_id);
    }
    return chosen;
  }

  // Moves `w`'s queued requests to the other workers of `model_id` (`w` no longer counts as
  // one); without any, they end with `otherwise`.
  void Reroute(Worker* w, const std::string& model_id, const absl::Status& otherwise,
               Endings& endings) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Queued> moving = std::move(w->queue);
    w->queue.clear();
    queued_ -= static_cast<int>(moving.size());
    std::vector<Worker*> others = WorkersOf(model_id);
    others.erase(std::remove(others.begin(), others.end(), w), others.end());
    for (Queued& q : moving) {
      if (others.empty()) {
        ++models_[model_id].totals.failed;
        endings.emplace_back(std::move(q.task), otherwise);
        continue;
      }
      Push(Pick(models_[model_id], others), std::move(q));
    }
  }

  Worker* Pick(Model& model, const std::vector<Worker*>& candidates)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (candidates.size() == 1) return candidates[0];
    if (settings_.load_balancing == LoadBalancing::kRoundRobin) {
      return candidates[model.next_worker++ % candidates.size()];
    }
    std::uniform_int_distribution<size_t> any(0, candidates.size() - 1);
    Worker* a = candidates[any(rng_)];
    Worker* b = a;
    while (b == a) b = candidates[any(rng_)];
    return Load(*a) <= Load(*b) ? a : b;
  }

  static size_t Load(const Worker& w) {
    return w.queue.size() + (w.state == WorkerStatus::State::kBusy ? 1 : 0);
  }

  void Push(Worker* w, Queued queued) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    w->queue.push_back(std::move(queued));
    std::push_heap(w->queue.begin(), w->queue.end(), RunsLater);
    ++queued_;
    w->cv.Signal();
  }

  Queued Pop(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::pop_heap(w->queue.begin(), w->queue.end(), RunsLater);
    Queued queued = std::move(w->queue.back());
    w->queue.pop_back();
    --queued_;
    return queued;
  }

  // A worker's thread: holds an instance of its model and runs its queue.
  void Serve(Worker* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_ptr<HeldInstance> instance;
    Endings endings;
    mu_.Lock();
    for (;;) {
      while (!stopping_ && w->queue.empty() && w->model_id == w->attempted_model) {
        mu_.WaitWithDeadline(&w->cv, absl::InfiniteFuture());
      }
      if (w->model_id != w->attempted_model && !stopping_) {
        Switch(w, instance, endings);
      } else if (w->queue.empty()) {
        break;  // stopping, and drained
      } else {
        RunNext(w, instance.get(), endings);
      }
      if (!endings.empty()) {
        mu_.Unlock();
        End(endings);
        mu_.Lock();
      }
    }
    w->state = WorkerStatus::State::kStopped;
    mu_.Unlock();
    instance.reset();
  }

  // Runs (or ends) the first request in `w`'s queue.
  void RunNext(Worker* w, HeldInstance* instance, Endings& endings) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    Queued next = Pop(w);
    Model& model = models_[next.model_id];
    if (stopping_ && absl::Now() >= drain_deadline_) {
      ++model.totals.cancelled;
      endings.emplace_back(
          std::move(next.task),
          absl::CancelledError("the worker pool shut down before the request ran"));
    } else if (next.task.deadline <= absl::Now()) {
      ++model.totals.expired;
      endings.emplace_back(std::move(next.task), absl::DeadlineExceededError(
                                                     "the request's deadline passed in the queue"));
    } else if (instance == nullptr && stopping_) {
      ++model.totals.cancelled;
      endings.emplace_back(
          std::move(next.task),
          absl::CancelledError("the worker pool shut down before the request ran"));
    } else if (instance == nullptr) {
      ++model.totals.failed;
      endings.emplace_back(std::move(next.task), w->load_error);
    } else {
      w->state = WorkerStatus::State::kBusy;
      mu_.Unlock();
      const absl::Status status = next.task.run(instance->get());
      mu_.Lock();
      w->state = WorkerStatus::State::kIdle;
      ++w->completed;
      w->last_activity = absl::Now();
      if (status.ok()) {
        ++model.totals.succeeded;
      } else {
        ++model.totals.failed;
        ++w->errors;
        w->last_error = status.ToString();
      }
      mu_.Unlock();
      next.task.publish();
      mu_.Lock();
    }
  }

  // Lets go of the worker's instance and leases one of the model it now serves.
  // A failed load hands the worker's queue to the model's other workers.
  void Switch(Worker* w, std::unique_ptr<HeldInstance>& instance,
              Endings& endings) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const std::string wanted = w->model_id;
    std::shared_ptr<ModelBackend> backend = wanted.empty() ? nullptr : models_[wanted].backend;
    w->state = wanted.empty() ? WorkerStatus::State::kIdle : WorkerStatus::State::kLoading;
    mu_.Unlock();
    instance.reset();
    absl::StatusOr<std::unique_ptr<HeldInstance>> acquired = nullptr;
    if (backend != nullptr) acquired = backend->AcquireOn(w->device, options_.load_timeout);
    mu_.Lock();
    w->attempted_model = wanted;
    if (acquired.ok()) {
      instance = *std::move(acquired);
      w->load_error = absl::OkStatus();
      w->state = WorkerStatus::State::kIdle;
    } else {
      w->load_error = acquired.status();
      w->last_error = acquired.status().ToString();
      w->state = WorkerStatus::State::kFailed;
      Reroute(w, wanted, w->load_error, endings);
      Log(LogSeverity::kError, absl::StrCat("worker ", w->id, " on ", w->device.ToString(),
                                            " cannot load ", wanted, ": ", w->last_error));
    }
    w->last_activity = absl::Now();
  }

  void RunDirect(const std::string& model_id, ModelBackend& backend, Task task) {
    absl::StatusOr<std::unique_ptr<HeldInstance>> instance =
        backend.AcquireAny(options_.load_timeout);
    const absl::Status status = instance.ok() ? task.run((*instance)->get()) : instance.status();
    {
      MutexLock lock(&mu_);
      ModelTotals& totals = models_[model_id].totals;
      ++totals.submitted;
      ++(status.ok() ? totals.succeeded : totals.failed);
    }
    if (instance.ok()) {
      task.publish();
    } else {
      task.fail(status);
    }
  }

  absl::Status PreloadDirect(ModelBackend& backend, int n) {
    std::vector<std::unique_ptr<HeldInstance>> held;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::unique_ptr<HeldInstance>> instance =
          backend.AcquireAny(absl::ZeroDuration());
      if (!instance.ok()) {
        if (i > 0 && instance.status().code() == absl::StatusCode::kDeadlineExceeded) break;
        return instance.status();
      }
      held.push_back(*std::move(instance));
    }
    return absl::OkStatus();
  }

  const WorkerPoolOptions options_;
  const Settings settings_;
  const std::vector<Device> devices_;

  mutable Mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;  // fixed at construction
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
  int queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_);
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_){0x5eed};
  Mutex join_mu_;  // one Shutdown() joins the threads; others wait for it
};

absl::StatusOr<std::unique_ptr<GenericWorkerPool>> GenericWorkerPool::Create(
    WorkerPoolOptions options) {
  auto pool = std::unique_ptr<GenericWorkerPool>(new GenericWorkerPool());
  MODELPOOL_RETURN_IF_ERROR(pool->Init(std::move(options)));
  return pool;
}

absl::Status GenericWorkerPool::Init(WorkerPoolOptions options) {
  Settings settings;
  if (options.settings) {
    settings = *options.settings;
  } else {
    MODELPOOL_ASSIGN_OR_RETURN(settings, Settings::FromEnv());
  }
  MODELPOOL_RETURN_IF_ERROR(settings.Validate());
  if (options.max_queued_requests < 1) {
    return absl::InvalidArgumentError("max_queued_requests must be at least 1");
  }
  if (!options.inventory) options.inventory = DeviceInventory::System();
  MODELPOOL_ASSIGN_OR_RETURN(std::vector<Device> devices,
                             SelectDevices(settings, *options.inventory));
  impl_ = std::make_unique<Impl>(std::move(options), std::move(settings), std::move(devices));
  return absl::OkStatus();
}

GenericWorkerPool::GenericWorkerPool() = default;
GenericWorkerPool::~GenericWorkerPool() = default;

absl::Status GenericWorkerPool::AddBackend(std::string model_id,
                                           std::shared_ptr<ModelBackend> backend) {
  return impl_->AddBackend(std::move(model_id), std::move(backend));
}

void GenericWorkerPool::Dispatch(const std::string& model_id, std::type_index type, Task task) {
  impl_->Dispatch(model_id, type, std::move(task));
}

absl::Status GenericWorkerPool::PreloadModel(const std::string& model_id, int num_workers) {
  return impl_->PreloadModel(model_id, num_workers);
}

WorkerPoolStatus GenericWorkerPool::Status() const { return impl_->Status(); }

void GenericWorkerPool::Shutdown(absl::Duration drain_timeout) { impl_->Shutdown(drain_timeout); }

const std::vector<Device>& GenericWorkerPool::devices() const { return impl_->devices(); }
const Settings& GenericWorkerPool::settings() const { return impl_->settings(); }

}  // namespace modelpool
