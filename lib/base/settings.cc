#include "modelpool/base/settings.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "lib/base/env_parsing.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {

using base_internal::BadVariable;
using base_internal::NameVariable;
using base_internal::ParseBool;
using base_internal::ParseNonNegative;
using base_internal::ParseNumberAbove;

absl::StatusOr<Settings> Settings::FromEnv() { return FromEnv(Settings()); }

absl::StatusOr<Settings> Settings::FromEnv(Settings base, const EnvLookup& lookup) {
  const EnvLookup& env = lookup ? lookup : EnvLookup(base_internal::ProcessEnv);
  Settings s = std::move(base);
  if (auto v = env("MODELPOOL_MAX_INSTANCES")) {
    MODELPOOL_ASSIGN_OR_RETURN(const int64_t n,
                               ParseNonNegative("MODELPOOL_MAX_INSTANCES", *v, 1 << 20));
    if (n < 1) return BadVariable("MODELPOOL_MAX_INSTANCES", *v, "at least 1");
    s.max_instances = static_cast<int>(n);
  }
  if (auto v = env("MODELPOOL_FORCE_CPU")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.force_cpu, ParseBool("MODELPOOL_FORCE_CPU", *v));
  }
  if (auto v = env("MODELPOOL_FORCE_GPU")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.force_gpu, ParseBool("MODELPOOL_FORCE_GPU", *v));
  }
  if (auto v = env("MODELPOOL_DEVICES")) {
    if (absl::StripAsciiWhitespace(*v).empty()) {
      s.devices.clear();
    } else {
      absl::StatusOr<std::vector<Device>> devices = Device::ParseList(*v);
      if (!devices.ok()) return NameVariable(devices.status(), "MODELPOOL_DEVICES");
      s.devices = *std::move(devices);
    }
  }
  if (auto v = env("MODELPOOL_DTYPE")) {
    absl::StatusOr<DType> dtype = ParseDType(*v);
    if (!dtype.ok()) return NameVariable(dtype.status(), "MODELPOOL_DTYPE");
    s.dtype = *dtype;
  }
  if (auto v = env("MODELPOOL_VRAM_SAFETY_MARGIN_MB")) {
    MODELPOOL_ASSIGN_OR_RETURN(const int64_t mb, ParseNonNegative("MODELPOOL_VRAM_SAFETY_MARGIN_MB",
                                                                  *v, int64_t{1} << 30));
    s.vram_safety_margin_bytes = mb << 20;
  }
  if (auto v = env("MODELPOOL_MEMORY_THRESHOLD")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.memory_threshold,
                               ParseNumberAbove("MODELPOOL_MEMORY_THRESHOLD", *v, 0, 1));
  }
  if (auto v = env("MODELPOOL_GPU_MEMORY_BUDGET_MB")) {
    MODELPOOL_ASSIGN_OR_RETURN(
        const int64_t mb, ParseNonNegative("MODELPOOL_GPU_MEMORY_BUDGET_MB", *v, int64_t{1} << 30));
    s.gpu_memory_budget_bytes = mb << 20;
  }
  if (auto v = env("MODELPOOL_CPU_MEMORY_BUDGET_MB")) {
    MODELPOOL_ASSIGN_OR_RETURN(
        const int64_t mb, ParseNonNegative("MODELPOOL_CPU_MEMORY_BUDGET_MB", *v, int64_t{1} << 30));
    s.cpu_memory_budget_bytes = mb << 20;
  }
  // The log level is not a setting of one manager: the default sink reads the variable itself.
  // A value it cannot read is refused here, where the program can still say so and stop.
  if (auto v = env("MODELPOOL_LOG_LEVEL"); v.has_value() && !ParseLogSeverity(*v).ok()) {
    return BadVariable("MODELPOOL_LOG_LEVEL", *v, "debug, info, warning or error");
  }
  if (auto v = env("MODELPOOL_FOOTPRINT_FACTOR")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.footprint_estimate_factor,
                               ParseNumberAbove("MODELPOOL_FOOTPRINT_FACTOR", *v, 0, 100));
  }
  if (auto v = env("MODELPOOL_FOOTPRINT_FILE")) s.footprint_file = *v;
  if (absl::Status valid = s.Validate(); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("settings from MODELPOOL_* environment variables: ", valid.message()));
  }
  return s;
}

absl::Status Settings::Validate() const {
  if (max_instances < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_instances is ", max_instances, ": it must be at least 1"));
  }
  if (force_cpu && force_gpu) {
    return absl::InvalidArgumentError("force_cpu and force_gpu are both set");
  }
  if (vram_safety_margin_bytes < 0) {
    return absl::InvalidArgumentError("vram_safety_margin_bytes is negative");
  }
  if (!(memory_threshold > 0 && memory_threshold <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_threshold is ", memory_threshold, ": it must be in (0, 1]"));
  }
  if (gpu_memory_budget_bytes < 0 || cpu_memory_budget_bytes < 0) {
    return absl::InvalidArgumentError("a memory budget is negative");
  }
  if (!(footprint_estimate_factor > 0 && footprint_estimate_factor <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "footprint_estimate_factor is ", footprint_estimate_factor, ": it must be in (0, 100]"));
  }
  bool any_cuda = false, any_cpu = false;
  for (const Device& d : devices) (d.is_cuda() ? any_cuda : any_cpu) = true;
  if (force_gpu && any_cpu) {
    return absl::InvalidArgumentError("force_gpu is set but devices lists the cpu");
  }
  if (force_cpu && any_cuda) {
    return absl::InvalidArgumentError("force_cpu is set but devices lists a GPU");
  }
  if (any_cpu && any_cuda) {
    return absl::InvalidArgumentError("devices mixes the cpu and GPUs; list one kind");
  }
  return absl::OkStatus();
}

}  // namespace modelpool
