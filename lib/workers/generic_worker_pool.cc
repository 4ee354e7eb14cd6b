#include "modelpool/workers/generic_worker_pool.h"

#include "lib/workers/scheduler.h"
#include "modelpool/base/status.h"
#include "modelpool/pool/pool_sizing.h"

namespace modelpool {

using workers_internal::ModelBackend;
using workers_internal::Scheduler;
using workers_internal::Task;

// The pool's settings and its scheduler, which owns the worker threads.
class GenericWorkerPool::Impl {
 public:
  Impl(Settings settings, Scheduler::Options options, absl::Duration drain)
      : settings_(std::move(settings)),
        workers_(options.settings),
        drain_(drain),
        scheduler_(std::move(options)) {}
  ~Impl() { scheduler_.Shutdown(drain_); }

  const Settings settings_;
  const WorkerSettings workers_;
  const absl::Duration drain_;
  Scheduler scheduler_;
};

absl::StatusOr<std::unique_ptr<GenericWorkerPool>> GenericWorkerPool::Create(
    WorkerPoolOptions options) {
  auto pool = std::unique_ptr<GenericWorkerPool>(new GenericWorkerPool());
  MODELPOOL_RETURN_IF_ERROR(pool->Initialize(std::move(options)));
  return pool;
}

absl::Status GenericWorkerPool::Initialize(WorkerPoolOptions options) {
  if (impl_ != nullptr) return absl::FailedPreconditionError("Initialize() called twice");
  Settings settings;
  if (options.settings) {
    settings = *options.settings;
  } else {
    MODELPOOL_ASSIGN_OR_RETURN(settings, Settings::FromEnv());
  }
  MODELPOOL_RETURN_IF_ERROR(settings.Validate());
  WorkerSettings workers;
  if (options.workers) {
    workers = *options.workers;
  } else {
    MODELPOOL_ASSIGN_OR_RETURN(workers, WorkerSettings::FromEnv());
  }
  MODELPOOL_RETURN_IF_ERROR(workers.Validate());
  if (options.max_queued_requests < 1) {
    return absl::InvalidArgumentError("max_queued_requests must be at least 1");
  }
  if (!options.inventory) options.inventory = DeviceInventory::System();
  MODELPOOL_ASSIGN_OR_RETURN(std::vector<Device> devices,
                             SelectDevices(settings, *options.inventory));
  if (!options.governor) {
    MODELPOOL_ASSIGN_OR_RETURN(options.governor,
                               MemoryGovernor::Shared(options.inventory, settings));
  }
  MODELPOOL_ASSIGN_OR_RETURN(std::unique_ptr<workers_internal::SchedulingPolicy> policy,
                             workers_internal::MakeSchedulingPolicy(workers.policy));
  Scheduler::Options scheduler;
  scheduler.settings = workers;
  scheduler.devices = std::move(devices);
  scheduler.clock = options.clock != nullptr ? options.clock : &Clock::Real();
  scheduler.governor = std::move(options.governor);
  scheduler.policy = std::move(policy);
  scheduler.max_queued_requests = options.max_queued_requests;
  scheduler.load_timeout = options.load_timeout;
  impl_ = std::make_unique<Impl>(std::move(settings), std::move(scheduler),
                                 options.shutdown_drain_timeout);
  return absl::OkStatus();
}

GenericWorkerPool::GenericWorkerPool() = default;
GenericWorkerPool::~GenericWorkerPool() = default;

absl::Status GenericWorkerPool::AddBackend(std::string model_id,
                                           std::shared_ptr<ModelBackend> backend,
                                           const ModelOptions& options) {
  return impl_->scheduler_.AddModel(std::move(model_id), std::move(backend), options);
}

JobId GenericWorkerPool::Dispatch(const std::string& model_id, std::type_index type, Task task,
                                  const SubmitOptions& options) {
  return impl_->scheduler_.Submit(model_id, type, std::move(task), options);
}

void GenericWorkerPool::WaitReporting(workers_internal::Completions& completions,
                                      const std::vector<int64_t>& sizes, int64_t total,
                                      const std::function<void(int64_t, int64_t)>& on_progress) {
  size_t remaining = sizes.size();
  int64_t done = 0;
  while (remaining > 0) {
    for (size_t index : completions.WaitForMore()) {
      --remaining;
      done += sizes[index];
      if (on_progress) on_progress(done, total);
    }
  }
}

absl::Status GenericWorkerPool::PreloadModel(const std::string& model_id, int num_instances) {
  return impl_->scheduler_.Preload(model_id, num_instances);
}

absl::StatusOr<JobInfo> GenericWorkerPool::Poll(JobId id) const {
  return impl_->scheduler_.Poll(id);
}
absl::StatusOr<JobInfo> GenericWorkerPool::Wait(JobId id, absl::Duration timeout) {
  return impl_->scheduler_.Wait(id, timeout);
}
absl::Status GenericWorkerPool::Cancel(JobId id) { return impl_->scheduler_.Cancel(id); }
WorkerPoolStats GenericWorkerPool::Stats() const { return impl_->scheduler_.Stats(); }
void GenericWorkerPool::AddListener(WorkerPoolListener* listener) {
  impl_->scheduler_.AddListener(listener);
}
void GenericWorkerPool::RemoveListener(WorkerPoolListener* listener) {
  impl_->scheduler_.RemoveListener(listener);
}
void GenericWorkerPool::Shutdown(absl::Duration drain_timeout) {
  impl_->scheduler_.Shutdown(drain_timeout);
}
const std::vector<Device>& GenericWorkerPool::devices() const {
  return impl_->scheduler_.devices();
}
const Settings& GenericWorkerPool::settings() const { return impl_->settings_; }
const WorkerSettings& GenericWorkerPool::worker_settings() const { return impl_->workers_; }
int GenericWorkerPool::num_workers() const { return impl_->scheduler_.num_workers(); }

}  // namespace modelpool
