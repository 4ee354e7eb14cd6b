#ifndef MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_
#define MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "modelpool/base/clock.h"
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/base/status.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/devices/memory_governor.h"
#include "modelpool/pool/abstract_model_manager.h"
#include "modelpool/workers/fault_injector.h"
#include "modelpool/workers/health.h"
#include "modelpool/workers/internal/joinable_task.h"
#include "modelpool/workers/internal/model_backend.h"
#include "modelpool/workers/internal/model_call.h"
#include "modelpool/workers/job.h"
#include "modelpool/workers/joinable.h"
#include "modelpool/workers/worker_pool_listener.h"
#include "modelpool/workers/worker_pool_stats.h"
#include "modelpool/workers/worker_settings.h"

namespace modelpool {

// How a many-batch call is scheduled and reported.
struct MapOptions {
  SubmitOptions submit;
  // Called on the calling thread as batches finish, with items done and items in all.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

struct WorkerPoolOptions {
  // Devices and memory budgets. Unset: `Settings::FromEnv()`.
  std::optional<Settings> settings;
  // Workers and scheduling. Unset: `WorkerSettings::FromEnv()`.
  std::optional<WorkerSettings> workers;
  // Unset: `DeviceInventory::System()`.
  std::shared_ptr<DeviceInventory> inventory;
  // The memory governor the registered models take memory from; it must be theirs. Unset: the
  // one every manager on `inventory` shares.
  std::shared_ptr<MemoryGovernor> governor;
  // Where deadlines, keep-alive, aging and switch limits read the time. Unset: the real clock.
  // Must outlive the pool.
  Clock* clock = nullptr;
  // Requests queued over all workers, beyond which `Submit` fails with `ResourceExhausted`.
  int max_queued_requests = 100000;
  // How long a load may wait for its device's previous load, and a request for memory to load
  // its model (it then fails with `ResourceExhausted`, saying what is loaded).
  absl::Duration load_timeout = absl::Minutes(10);
  // How long the destructor lets workers drain the queue before cancelling the rest.
  absl::Duration shutdown_drain_timeout = absl::Seconds(30);
  // Faults to inject into model calls and loads, to see what the pool does under them. Unset:
  // what `MODELPOOL_FAULTS` says (`FaultInjector::FromEnv()`), else none.
  std::shared_ptr<FaultInjector> faults;
};

// A one-row request a pool runs on a loaded instance to check that it works (a deep health
// check): OK if it does.
template <typename T>
using HealthProbe = std::function<absl::Status(T&)>;

namespace workers_internal {
class Scheduler;
}  // namespace workers_internal

// GenericWorkerPool
//
// Worker threads on every device (`workers_per_device` each) that serve any number of
// registered models, loading them on demand into the memory budget every model shares and
// unloading them when idle. Requests wait in one queue for the whole pool, ordered by priority
// class (`Priority`), within a class by priority, deadline and age, with aging so that no class
// starves. A free worker takes the first request it may run, preferring its own model's work:
// it drains its model's queue and changes models only for work that outranks its own. A
// request for a model with no instance loads one on the best device (affinity, room, fewest
// queued tokens), evicting idle instances of other models if needed (never a leased one).
//
// Every request ends exactly once: with the model's result, with its error (the worker keeps
// serving), with `DeadlineExceeded` if its deadline passes before it starts or it runs past its
// execution timeout, with `ResourceExhausted` if its model cannot be loaded in time, with
// `Unavailable` if no device can serve its model (every circuit open, or every device gave the
// model up after failed restarts), or with `Cancelled` (by `Cancel()`, or at shutdown). Requests
// are also jobs with ids: `Poll()`, `Wait()`, `Cancel()`.
//
// Faults are survived (see `FailureSettings` and the README's "Failure handling"): failed loads
// and instances that fail their health check are restarted with backoff, hung requests end and
// their worker gets a new thread, a model that keeps failing on a device has its circuit opened
// there, and a batch that runs out of device memory is split and retried.
//
// With the `worker_pool` setting off there are no threads: requests run on the calling
// thread, on an instance leased from the manager, and give the same results.
//
// This class is generic over the model type; `WorkerPool` adds embedding and summarization.
// Thread-safe.
class GenericWorkerPool {
 public:
  static absl::StatusOr<std::unique_ptr<GenericWorkerPool>> Create(WorkerPoolOptions options = {});

  GenericWorkerPool(const GenericWorkerPool&) = delete;
  GenericWorkerPool& operator=(const GenericWorkerPool&) = delete;
  // Shuts down, draining for `shutdown_drain_timeout`.
  virtual ~GenericWorkerPool();

  // GenericWorkerPool::RegisterModel()
  //
  // Makes `manager`'s model available as `model_id`; loads nothing. `AlreadyExists` if the id
  // is taken; `FailedPrecondition` if the model runs on none of the pool's devices, or takes its
  // memory from another governor than the pool's.
  //
  // `probe` checks an instance (a deep health check, on the `health_check_interval`, on demand
  // and after an error a broken instance would give); unset: the pool's own for the model type
  // (`WorkerPool` has one for embedding and summarization models), else none.
  template <typename T>
  absl::Status RegisterModel(std::string model_id, std::shared_ptr<AbstractModelManager<T>> manager,
                             const ModelOptions& options = {}, HealthProbe<T> probe = nullptr) {
    if (manager == nullptr) return absl::InvalidArgumentError("RegisterModel: no manager");
    std::shared_ptr<const workers_internal::RunFn> run;
    if (probe) {
      run = std::make_shared<const workers_internal::RunFn>(
          [probe = std::move(probe)](void* instance, workers_internal::ModelCall& call) {
            return call.Run("a health check", [&] { return probe(*static_cast<T*>(instance)); });
          });
    }
    return AddBackend(std::move(model_id),
                      std::make_shared<workers_internal::ManagerBackend<T>>(std::move(manager)),
                      options, std::move(run));
  }

  // GenericWorkerPool::PreloadModel()
  //
  // Makes sure `num_instances` instances of `model_id` are loaded, spread over its devices, and
  // gives them to workers that have no model or whose model has nothing queued; it never takes
  // a worker from queued work, and evicts only idle instances of models with nothing queued.
  // Returns the first load's error (naming the device), or `NotFound` for an unknown model.
  absl::Status PreloadModel(const std::string& model_id, int num_instances);

  // GenericWorkerPool::SubmitJob()
  //
  // Queues `fn`, to be called with an instance of the `T` registered as `model_id`; the handle
  // holds the job's id and a future of its result. Errors that end the request without running
  // it: `NotFound` (unknown model), `InvalidArgument` (`T` is not the model's type),
  // `ResourceExhausted` (queue full, or the model fits no device, or it could not be loaded in
  // time), `Unavailable` (no device can serve the model), `DeadlineExceeded`, `Cancelled`. A
  // call of `fn` that runs out of device memory is tried once more after the device's cached
  // memory is freed (the pool cannot split it); one that runs past its execution timeout ends
  // the request with `DeadlineExceeded` and is left to return on its own, its result discarded.
  template <typename T, typename R>
  JobHandle<R> SubmitJob(const std::string& model_id, std::function<absl::StatusOr<R>(T&)> fn,
                         const SubmitOptions& options = {}) {
    return SubmitTracked<T, R>(model_id, Whole<T, R>(model_id, std::move(fn)), options, nullptr, 0);
  }

  // GenericWorkerPool::SubmitJoinable()
  //
  // As `SubmitJob()`, for a request that may run in one call with other queued requests of
  // `model_id` (see `Joinable` and `WorkerSettings::batch_window`); it fails as `SubmitJob()`
  // does, and with what `joinable.run` returns for it.
  template <typename T, typename Request, typename Result>
  JobHandle<Result> SubmitJoinable(const std::string& model_id,
                                   Joinable<T, Request, Result> joinable,
                                   const SubmitOptions& options = {}) {
    return SubmitJoinableTracked(model_id, std::move(joinable), options, nullptr, 0);
  }

  // GenericWorkerPool::SubmitTask()
  //
  // `SubmitJob()` for those who need only the result.
  template <typename T, typename R>
  std::future<absl::StatusOr<R>> SubmitTask(const std::string& model_id,
                                            std::function<absl::StatusOr<R>(T&)> fn,
                                            const SubmitOptions& options = {}) {
    return SubmitJob<T, R>(model_id, std::move(fn), options).result;
  }

  // GenericWorkerPool::SubmitCallback()
  //
  // The primitive under `SubmitJob`: exactly one of `run` (on a worker, with an instance; its
  // status counts as the request's outcome) or `not_run` (with the reason the request ended
  // without running) is called, once; except that a `run` past its execution timeout gets
  // `not_run(DeadlineExceeded)` while it still runs, and whatever it does after is the caller's
  // to ignore. `not_run` may be called before this returns.
  template <typename T>
  JobId SubmitCallback(const std::string& model_id, std::function<absl::Status(T&)> run,
                       std::function<void(absl::Status)> not_run,
                       const SubmitOptions& options = {}) {
    workers_internal::Task task;
    task.run = std::make_shared<const workers_internal::RunFn>(
        [run = std::move(run), model_id](void* instance, workers_internal::ModelCall& call) {
          return call.Run(absl::StrCat("running a request on ", model_id),
                          [&] { return run(*static_cast<T*>(instance)); });
        });
    task.publish = [] {};
    task.fail = std::move(not_run);
    return Dispatch(model_id, typeid(T), std::move(task), options);
  }

  // GenericWorkerPool::MapBatches()
  //
  // Runs `fn` on every batch, spread over the model's workers, and returns the outputs of all
  // batches concatenated in input order; `fn` returns one output per input. The first failed
  // batch's error is returned (batches not yet started are then skipped).
  template <typename T, typename In, typename Out>
  absl::StatusOr<std::vector<Out>> MapBatches(
      const std::string& model_id, std::vector<std::vector<In>> batches,
      std::function<absl::StatusOr<std::vector<Out>>(T&, const std::vector<In>&)> fn,
      const MapOptions& options = {}) {
    auto failed = std::make_shared<std::atomic<bool>>(false);
    auto completions = std::make_shared<workers_internal::Completions>();
    std::vector<std::future<absl::StatusOr<std::vector<Out>>>> futures;
    std::vector<int64_t> sizes;
    int64_t total = 0;
    for (std::vector<In>& batch : batches) {
      sizes.push_back(static_cast<int64_t>(batch.size()));
      total += sizes.back();
      futures.push_back(
          SubmitTracked<T, std::vector<Out>>(
              model_id,
              [fn, failed, batch = std::move(batch)](T& instance, workers_internal::ModelCall& call)
                  -> absl::StatusOr<std::vector<Out>> {
                if (failed->load()) return absl::CancelledError("an earlier batch failed");
                absl::StatusOr<std::vector<Out>> out =
                    call.RunWhole("a batch", [&] { return fn(instance, batch); });
                if (out.ok() && out->size() != batch.size()) {
                  out = absl::InternalError(absl::StrCat("a batch of ", batch.size(),
                                                         " inputs gave ", out->size(), " outputs"));
                }
                if (!out.ok()) failed->store(true);
                return out;
              },
              options.submit, completions, futures.size())
              .result);
    }
    WaitReporting(*completions, sizes, total, options.on_progress);
    std::vector<Out> outputs;
    outputs.reserve(static_cast<size_t>(total));
    absl::Status first_error;
    for (size_t i = 0; i < futures.size(); ++i) {
      absl::StatusOr<std::vector<Out>> out = futures[i].get();
      if (!out.ok()) {
        // A batch skipped after another failed is not the cause: report the cause.
        if (first_error.ok() || first_error.code() == absl::StatusCode::kCancelled) {
          first_error = absl::Status(
              out.status().code(),
              absl::StrCat("batch ", i, " of ", futures.size(), ": ", out.status().message()));
        }
        continue;
      }
      for (Out& o : *out) outputs.push_back(std::move(o));
    }
    if (!first_error.ok()) return first_error;
    return outputs;
  }

  // GenericWorkerPool::Poll()
  //
  // Where job `id` is, with its timestamps and, once it has ended, its outcome. `NotFound` for
  // an id this pool never gave or has forgotten (it keeps `job_history` ended jobs).
  absl::StatusOr<JobInfo> Poll(JobId id) const;

  // GenericWorkerPool::Wait()
  //
  // Waits up to `timeout` (real time) for job `id` to end and returns what `Poll()` then does;
  // `DeadlineExceeded` if it has not ended by then.
  absl::StatusOr<JobInfo> Wait(JobId id, absl::Duration timeout);

  // GenericWorkerPool::Cancel()
  //
  // Ends a job that has not started with `Cancelled` (one being loaded for ends when its load
  // returns). `FailedPrecondition` for a job that is running or has ended, `NotFound` for an
  // unknown id.
  absl::Status Cancel(JobId id);

  // Per device: budget, used, free, what is loaded. Per model: where it is loaded, queued,
  // running, loads, evictions, switches, last used; its health, circuit breakers and restarts
  // per device. Per worker: state (with its last changes), health, model, switches. The pool's
  // health, the calls given up on that have not returned, what the fault injector did.
  WorkerPoolStats Stats() const;

  // GenericWorkerPool::CheckHealth()
  //
  // Runs a deep check (the model's probe, a one-row request) on every model loaded, on each
  // device it is loaded on, waiting up to `timeout`; an instance that fails its check is
  // unloaded and its model restarted there with backoff. Returns the pool's health then, or
  // `DeadlineExceeded` if checks were still waiting (every worker busy) or running.
  absl::StatusOr<Health> CheckHealth(absl::Duration timeout);

  // GenericWorkerPool::AddListener()
  //
  // `listener` hears the pool's events from now on (see `WorkerPoolListener`) until
  // `RemoveListener()`, after which a delivery in progress may still reach it.
  void AddListener(std::shared_ptr<WorkerPoolListener> listener);
  void RemoveListener(const WorkerPoolListener* listener);

  // GenericWorkerPool::Shutdown()
  //
  // Refuses new requests (`Cancelled`), lets workers run what is queued until `drain_timeout`
  // passes, cancels what is left, and joins the workers. A request still running at the
  // deadline ends with `Cancelled` and its thread is left to return on its own (its result
  // discarded): shutdown never waits on a stuck call. Idempotent; later calls return at once.
  void Shutdown(absl::Duration drain_timeout);

  // The devices the workers run on (the CPU when there is no GPU).
  const std::vector<Device>& devices() const;
  const Settings& settings() const;
  const WorkerSettings& worker_settings() const;
  // Worker threads (0 with the `worker_pool` setting off).
  int num_workers() const;

 protected:
  // A request's code, with the `ModelCall` it calls its model through.
  template <typename T, typename R>
  using CallFn = std::function<absl::StatusOr<R>(T&, workers_internal::ModelCall&)>;

  // `fn` as one call of the model, tried once more after running out of memory.
  template <typename T, typename R>
  static CallFn<T, R> Whole(const std::string& model_id, std::function<absl::StatusOr<R>(T&)> fn) {
    return [fn = std::move(fn), what = absl::StrCat("running a request on ", model_id)](
               T& instance, workers_internal::ModelCall& call) {
      return call.RunWhole(what, [&] { return fn(instance); });
    };
  }

  // `SubmitJob()` for code that calls the model through a `ModelCall` (so that it can split a
  // batch that runs out of memory); it also reports the job's end as `index` to `completions`
  // (when not null), and its result to `on_end` (when set) just before its caller gets it.
  template <typename T, typename R>
  JobHandle<R> SubmitTracked(const std::string& model_id, CallFn<T, R> fn,
                             const SubmitOptions& options,
                             std::shared_ptr<workers_internal::Completions> completions,
                             size_t index,
                             std::function<void(const absl::StatusOr<R>&)> on_end = nullptr) {
    struct Outcome {
      std::promise<absl::StatusOr<R>> promise;
      absl::StatusOr<R> result = absl::UnknownError("not run");
    };
    auto outcome = std::make_shared<Outcome>();
    JobHandle<R> handle;
    handle.result = outcome->promise.get_future();
    workers_internal::Task task;
    task.run = std::make_shared<const workers_internal::RunFn>(
        [outcome, fn = std::move(fn), model_id](void* instance, workers_internal::ModelCall& call) {
          outcome->result = CallCatching(absl::StrCat("running a request on ", model_id),
                                         [&] { return fn(*static_cast<T*>(instance), call); });
          return UnsharedCopy(outcome->result.status());  // Note [Statuses that cross threads]
        });
    task.publish = [outcome, completions, index, on_end] {
      if (on_end) on_end(outcome->result);
      outcome->promise.set_value(std::move(outcome->result));
      if (completions != nullptr) completions->Done(index);
    };
    task.fail = [outcome, completions, index, on_end](absl::Status status) {
      if (on_end) on_end(status);
      outcome->promise.set_value(std::move(status));
      if (completions != nullptr) completions->Done(index);
    };
    handle.id = Dispatch(model_id, typeid(T), std::move(task), options);
    return handle;
  }

  // `SubmitJoinable()` that also reports the job's end as `index` to `completions` (when not
  // null), and its result to `on_end` (when set) just before its caller gets it. A request that
  // runs alone runs through `alone` when set (which may split it when it runs out of memory).
  template <typename T, typename Request, typename Result>
  JobHandle<Result> SubmitJoinableTracked(
      const std::string& model_id, Joinable<T, Request, Result> joinable,
      const SubmitOptions& options, std::shared_ptr<workers_internal::Completions> completions,
      size_t index, std::function<void(const absl::StatusOr<Result>&)> on_end = nullptr,
      CallFn<T, Result> alone = nullptr) {
    auto joined = std::make_shared<workers_internal::TypedJoinableTask<T, Request, Result>>(
        std::move(joinable));
    auto promise = std::make_shared<std::promise<absl::StatusOr<Result>>>();
    JobHandle<Result> handle;
    handle.result = promise->get_future();
    workers_internal::Task task;
    task.joinable = joined;
    task.run = std::make_shared<const workers_internal::RunFn>(
        [joined, model_id, alone = std::move(alone)](void* instance,
                                                     workers_internal::ModelCall& call) {
          const std::string what = absl::StrCat("running a request on ", model_id);
          if (alone) {
            joined->result =
                CallCatching(what, [&] { return alone(*static_cast<T*>(instance), call); });
            return UnsharedCopy(joined->result.status());
          }
          workers_internal::JoinableTask* self = joined.get();
          absl::Status status = call.RunWhole(what, [&] {
            return joined->RunTogether(instance, absl::MakeConstSpan(&self, 1)).statuses.front();
          });
          // An injected fault stops the call before it sets the result.
          if (!status.ok()) joined->result = UnsharedCopy(status);
          return status;
        });
    task.publish = [joined, promise, completions, index, on_end] {
      if (on_end) on_end(joined->result);
      promise->set_value(std::move(joined->result));
      if (completions != nullptr) completions->Done(index);
    };
    task.fail = [promise, completions, index, on_end](absl::Status status) {
      if (on_end) on_end(status);
      promise->set_value(std::move(status));
      if (completions != nullptr) completions->Done(index);
    };
    handle.id = Dispatch(model_id, typeid(T), std::move(task), options);
    return handle;
  }

  // Waits until every request of a group has ended, calling `on_progress` (if set) as they do,
  // in any order; woken by each ending.
  static void WaitReporting(workers_internal::Completions& completions,
                            const std::vector<int64_t>& sizes, int64_t total,
                            const std::function<void(int64_t, int64_t)>& on_progress);

  GenericWorkerPool();
  // Reads the settings, chooses the devices and starts the workers; for subclasses' factories.
  absl::Status Initialize(WorkerPoolOptions options);

  // The deep check for models of `type` registered without a probe of their own; none here.
  virtual std::shared_ptr<const workers_internal::RunFn> DefaultProbe(std::type_index type) const;

  // Counts a request that joined an identical one in flight instead of being submitted.
  void CountMerged(const std::string& model_id);

 private:
  class Impl;

  absl::Status AddBackend(std::string model_id,
                          std::shared_ptr<workers_internal::ModelBackend> backend,
                          const ModelOptions& options,
                          std::shared_ptr<const workers_internal::RunFn> probe);
  JobId Dispatch(const std::string& model_id, std::type_index type, workers_internal::Task task,
                 const SubmitOptions& options);

  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_
