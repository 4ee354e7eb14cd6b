#ifndef MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_
#define MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_

#include <atomic>
#include <chrono>
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
#include "modelpool/base/device.h"
#include "modelpool/base/settings.h"
#include "modelpool/base/status.h"
#include "modelpool/devices/device_inventory.h"
#include "modelpool/pool/abstract_model_manager.h"

namespace modelpool {

// How one request is scheduled.
struct SubmitOptions {
  // Higher runs first among the requests queued on a worker; equal priorities run in order.
  int priority = 0;
  // A request that has not started by then ends with `DeadlineExceeded` without running.
  absl::Time deadline = absl::InfiniteFuture();
};

// How a many-batch call is scheduled and reported.
struct MapOptions {
  SubmitOptions submit;
  // Called on the calling thread as batches finish, with items done and items in all.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

struct WorkerPoolOptions {
  // Devices, workers per device, load balancing, whether to run workers at all. Unset:
  // `Settings::FromEnv()`.
  std::optional<Settings> settings;
  // Unset: `DeviceInventory::System()`.
  std::shared_ptr<DeviceInventory> inventory;
  // Requests queued over all workers, beyond which `Submit` fails with `ResourceExhausted`.
  int max_queued_requests = 100000;
  // How long a worker may take to lease an instance of its model (loading it if needed).
  absl::Duration load_timeout = absl::Minutes(10);
  // How long the destructor lets workers drain their queues before cancelling the rest.
  absl::Duration shutdown_drain_timeout = absl::Seconds(30);
};

// What one worker is doing.
struct WorkerStatus {
  enum class State { kIdle, kLoading, kBusy, kFailed, kStopped };
  int id = 0;
  Device device;
  std::string model_id;  // the model it serves; empty if none
  State state = State::kIdle;
  int queued = 0;
  uint64_t completed = 0;  // requests it ran, whatever their outcome
  uint64_t errors = 0;     // of those, how many ended with an error
  absl::Time last_activity;
  std::string last_error;
};

// Totals for one registered model.
struct ModelTotals {
  std::string model_id;
  int workers = 0;
  int queued = 0;
  uint64_t submitted = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;     // ran and returned an error (or threw)
  uint64_t expired = 0;    // deadline passed before they started
  uint64_t cancelled = 0;  // dropped at shutdown
  uint64_t rejected = 0;   // refused at submission (queue full, shut down)
};

struct WorkerPoolStatus {
  std::vector<WorkerStatus> workers;
  int queue_depth = 0;
  std::vector<ModelTotals> models;
};

// "idle", "loading", "busy", "failed", "stopped".
const char* WorkerStateName(WorkerStatus::State state);

namespace workers_internal {

// An instance a worker holds; ending it returns the instance to its manager's pool.
class HeldInstance {
 public:
  virtual ~HeldInstance() = default;
  virtual void* get() = 0;
};

// A registered model, with its instance type erased.
class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  virtual std::type_index type() const = 0;
  virtual std::vector<Device> devices() const = 0;
  virtual absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireOn(const Device& device,
                                                                  absl::Duration timeout) = 0;
  virtual absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireAny(absl::Duration timeout) = 0;
};

template <typename T>
class ManagerBackend : public ModelBackend {
 public:
  explicit ManagerBackend(std::shared_ptr<AbstractModelManager<T>> manager)
      : manager_(std::move(manager)) {}
  std::type_index type() const override { return typeid(T); }
  std::vector<Device> devices() const override { return manager_->devices(); }
  absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireOn(const Device& device,
                                                          absl::Duration timeout) override {
    return Hold(manager_->AcquireOn(device, timeout));
  }
  absl::StatusOr<std::unique_ptr<HeldInstance>> AcquireAny(absl::Duration timeout) override {
    return Hold(manager_->Acquire(timeout));
  }

 private:
  class Held : public HeldInstance {
   public:
    explicit Held(Lease<T> lease) : lease_(std::move(lease)) {}
    void* get() override { return lease_.get(); }

   private:
    Lease<T> lease_;
  };
  static absl::StatusOr<std::unique_ptr<HeldInstance>> Hold(absl::StatusOr<Lease<T>> lease) {
    if (!lease.ok()) return lease.status();
    return std::make_unique<Held>(*std::move(lease));
  }

  std::shared_ptr<AbstractModelManager<T>> manager_;
};

// One request. It ends exactly once: `run` (with an instance, returning the request's status)
// then `publish` (after the pool has counted it, so counters never lag a result), or `fail`.
struct Task {
  std::function<absl::Status(void* instance)> run;
  std::function<void()> publish;
  std::function<void(absl::Status)> fail;
  int priority = 0;
  absl::Time deadline = absl::InfiniteFuture();
};

}  // namespace workers_internal

// GenericWorkerPool
//
// Worker threads on every device (`workers_per_device` each) that run requests against
// model instances they hold. Each registered model is served by some workers; a worker
// leases one instance of its model on its own device from the model's manager and keeps it
// while it serves. Requests go to one worker of the model (round robin, or the less busy of
// two), wait in its queue by priority, and end exactly once: with the model's result, with
// its error (the worker keeps serving), with `DeadlineExceeded` if their deadline passes
// before they start, or with `Cancelled` if the pool shuts down first.
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
  // Makes `manager`'s model available as `model_id`. `AlreadyExists` if the id is taken.
  template <typename T>
  absl::Status RegisterModel(std::string model_id,
                             std::shared_ptr<AbstractModelManager<T>> manager) {
    if (manager == nullptr) return absl::InvalidArgumentError("RegisterModel: no manager");
    return AddBackend(std::move(model_id),
                      std::make_shared<workers_internal::ManagerBackend<T>>(std::move(manager)));
  }

  // GenericWorkerPool::PreloadModel()
  //
  // Dedicates up to `num_workers` workers (spread over the model's devices, idle ones first)
  // to `model_id` and waits until each has leased an instance. Fails with the first load
  // error, or `NotFound` for an unknown model.
  absl::Status PreloadModel(const std::string& model_id, int num_workers);

  // GenericWorkerPool::SubmitTask()
  //
  // Queues `fn`, to be called with an instance of the `T` registered as `model_id`; the future
  // holds its result. Errors that end the request without running it: `NotFound` (unknown
  // model), `InvalidArgument` (`T` is not the model's type), `ResourceExhausted` (queue full,
  // or no worker can serve the model), `DeadlineExceeded`, `Cancelled`.
  template <typename T, typename R>
  std::future<absl::StatusOr<R>> SubmitTask(const std::string& model_id,
                                            std::function<absl::StatusOr<R>(T&)> fn,
                                            const SubmitOptions& options = {}) {
    struct Outcome {
      std::promise<absl::StatusOr<R>> promise;
      absl::StatusOr<R> result = absl::UnknownError("not run");
    };
    auto outcome = std::make_shared<Outcome>();
    std::future<absl::StatusOr<R>> future = outcome->promise.get_future();
    workers_internal::Task task;
    task.priority = options.priority;
    task.deadline = options.deadline;
    task.run = [outcome, fn = std::move(fn), model_id](void* instance) {
      outcome->result = CallCatching(absl::StrCat("running a request on ", model_id),
                                     [&] { return fn(*static_cast<T*>(instance)); });
      return UnsharedCopy(outcome->result.status());  // Note [Statuses that cross threads]
    };
    task.publish = [outcome] { outcome->promise.set_value(std::move(outcome->result)); };
    task.fail = [outcome](absl::Status status) { outcome->promise.set_value(std::move(status)); };
    Dispatch(model_id, typeid(T), std::move(task));
    return future;
  }

  // GenericWorkerPool::SubmitCallback()
  //
  // The primitive under `SubmitTask`: exactly one of `run` (on a worker, with an instance;
  // its status counts as the request's outcome) or `not_run` (with the reason the request
  // ended without running) is called, once. `not_run` may be called before this returns.
  template <typename T>
  void SubmitCallback(const std::string& model_id, std::function<absl::Status(T&)> run,
                      std::function<void(absl::Status)> not_run,
                      const SubmitOptions& options = {}) {
    workers_internal::Task task;
    task.priority = options.priority;
    task.deadline = options.deadline;
    task.run = [run = std::move(run), model_id](void* instance) {
      return CallCatching(absl::StrCat("running a request on ", model_id),
                          [&] { return run(*static_cast<T*>(instance)); });
    };
    task.publish = [] {};
    task.fail = std::move(not_run);
    Dispatch(model_id, typeid(T), std::move(task));
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
    std::vector<std::future<absl::StatusOr<std::vector<Out>>>> futures;
    std::vector<int64_t> sizes;
    int64_t total = 0;
    for (std::vector<In>& batch : batches) {
      sizes.push_back(static_cast<int64_t>(batch.size()));
      total += sizes.back();
      futures.push_back(SubmitTask<T, std::vector<Out>>(
          model_id,
          [fn, failed, batch = std::move(batch)](T& instance) -> absl::StatusOr<std::vector<Out>> {
            if (failed->load()) return absl::CancelledError("an earlier batch failed");
            absl::StatusOr<std::vector<Out>> out =
                CallCatching("a batch", [&] { return fn(instance, batch); });
            if (out.ok() && out->size() != batch.size()) {
              out = absl::InternalError(absl::StrCat("a batch of ", batch.size(), " inputs gave ",
                                                     out->size(), " outputs"));
            }
            if (!out.ok()) failed->store(true);
            return out;
          },
          options.submit));
    }
    WaitReporting(futures, sizes, total, options.on_progress);
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

  // Workers, their states and counters, the queue depth and per-model totals.
  WorkerPoolStatus Status() const;

  // GenericWorkerPool::Shutdown()
  //
  // Refuses new requests (`Cancelled`), lets workers run what they have queued until
  // `drain_timeout` passes, cancels what is left, and joins the workers; a request already
  // running finishes first. Idempotent; later calls return at once.
  void Shutdown(absl::Duration drain_timeout);

  // The devices the workers run on (the CPU when there is no GPU).
  const std::vector<Device>& devices() const;
  const Settings& settings() const;

 protected:
  // Waits for every future, calling `on_progress` (if set) as they finish, in any order.
  template <typename F>
  static void WaitReporting(std::vector<F>& futures, const std::vector<int64_t>& sizes,
                            int64_t total,
                            const std::function<void(int64_t, int64_t)>& on_progress) {
    std::vector<bool> reported(futures.size(), false);
    int64_t done = 0;
    size_t remaining = futures.size();
    while (remaining > 0) {
      bool progressed = false;
      for (size_t i = 0; i < futures.size(); ++i) {
        if (reported[i] ||
            futures[i].wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
          continue;
        }
        reported[i] = true;
        --remaining;
        done += sizes[i];
        progressed = true;
        if (on_progress) on_progress(done, total);
      }
      if (progressed || remaining == 0) continue;
      for (size_t i = 0; i < futures.size(); ++i) {
        if (!reported[i]) {
          futures[i].wait_for(std::chrono::milliseconds(20));
          break;
        }
      }
    }
  }

  GenericWorkerPool();
  // Reads the settings, chooses the devices and starts the workers; for subclasses' factories.
  absl::Status Init(WorkerPoolOptions options);

 private:
  class Impl;

  absl::Status AddBackend(std::string model_id,
                          std::shared_ptr<workers_internal::ModelBackend> backend);
  void Dispatch(const std::string& model_id, std::type_index type, workers_internal::Task task);

  std::unique_ptr<Impl> impl_;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_GENERIC_WORKER_POOL_H_
