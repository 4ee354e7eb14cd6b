#ifndef MODELPOOL_BASE_SETTINGS_H_
#define MODELPOOL_BASE_SETTINGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"

namespace modelpool {

// How a worker pool picks the worker for a request.
enum class LoadBalancing {
  kRoundRobin,  // each worker in turn
  kLeastBusy,   // the less loaded of two workers picked at random (power of two choices)
};

// Settings
//
// Where model instances may run and how many there may be. Every manager takes a copy.
//
// Example:
//   absl::StatusOr<modelpool::Settings> settings = modelpool::Settings::FromEnv();
//   if (!settings.ok()) return settings.status();  // names the bad variable
struct Settings {
  // The most instances a manager keeps, over all its devices. `MODELPOOL_MAX_INSTANCES`.
  int max_instances = 4;
  // Run on the CPU even if GPUs are present. `MODELPOOL_FORCE_CPU`.
  bool force_cpu = false;
  // Fail with `FailedPrecondition` when no GPU is usable instead of falling back to the CPU.
  // `MODELPOOL_FORCE_GPU`.
  bool force_gpu = false;
  // The devices instances may use; empty means every GPU present (or the CPU if none).
  // `MODELPOOL_DEVICES`, e.g. "cuda:0,cuda:1".
  std::vector<Device> devices;
  // The compute type; unset means each model's default for the device. `MODELPOOL_DTYPE`.
  std::optional<DType> dtype;
  // VRAM left free on every GPU when sizing pools. `MODELPOOL_VRAM_SAFETY_MARGIN_MB`.
  int64_t vram_safety_margin_bytes = int64_t{1} << 30;

  // Worker threads per device in a `WorkerPool`. `MODELPOOL_WORKERS_PER_DEVICE`.
  int workers_per_device = 1;
  // `MODELPOOL_LOAD_BALANCING`: round_robin or least_busy.
  LoadBalancing load_balancing = LoadBalancing::kLeastBusy;
  // Whether a `WorkerPool` runs worker threads; when false its calls run on the calling
  // thread, on the managers directly, with the same results. `MODELPOOL_WORKER_POOL`.
  bool worker_pool = true;

  // Reads an environment variable; returns nullopt when it is unset.
  using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

  // Settings::FromEnv()
  //
  // Returns the defaults, or `base`, with every `MODELPOOL_*` variable above that is set (in
  // the process environment, or as `lookup` says) applied on top. A malformed value, or
  // settings that contradict each other, is `InvalidArgument` naming the variable; so is a
  // `MODELPOOL_LOG_LEVEL` that `ParseLogSeverity` refuses.
  static absl::StatusOr<Settings> FromEnv();
  static absl::StatusOr<Settings> FromEnv(Settings base, const EnvLookup& lookup = nullptr);

  // `InvalidArgument` when the fields contradict each other or are out of range.
  absl::Status Validate() const;
};

}  // namespace modelpool

#endif  // MODELPOOL_BASE_SETTINGS_H_
