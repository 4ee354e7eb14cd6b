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

// Settings
//
// Where model instances may run, how many there may be, and how much memory every device gives
// them. Every manager and worker pool takes a copy; the worker pool's own settings are
// `WorkerSettings` (modelpool/workers/worker_settings.h).
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
  // VRAM left free on every GPU: loads need this much free beyond what they take, and a GPU's
  // budget is at most its total memory minus this. `MODELPOOL_VRAM_SAFETY_MARGIN_MB`.
  int64_t vram_safety_margin_bytes = int64_t{1} << 30;

  // The memory budget of every device, shared by every model (see `MemoryGovernor`).
  // The fraction of a GPU's total memory that models may take, in (0, 1].
  // `MODELPOOL_MEMORY_THRESHOLD`.
  double memory_threshold = 0.8;
  // A cap on every GPU's budget; 0 for none. `MODELPOOL_GPU_MEMORY_BUDGET_MB`.
  int64_t gpu_memory_budget_bytes = 0;
  // The host memory models may take on the CPU; 0 means the host's physical memory times
  // `memory_threshold`. `MODELPOOL_CPU_MEMORY_BUDGET_MB`.
  int64_t cpu_memory_budget_bytes = 0;
  // Until an instance's footprint has been measured, the model's own estimate times this.
  // `MODELPOOL_FOOTPRINT_FACTOR`.
  double footprint_estimate_factor = 1.3;
  // A JSON file that keeps measured footprints between runs, so that the next start plans with
  // them; empty: measurements are not kept. `MODELPOOL_FOOTPRINT_FILE`.
  std::string footprint_file;

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
