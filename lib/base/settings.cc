#include "modelpool/base/settings.h"

#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::Status BadVariable(absl::string_view name, absl::string_view value,
                         absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, "='", value, "' is not valid: expected ", expected));
}

absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view value) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower.empty()) {
    return false;
  }
  return BadVariable(name, value, "1/0, true/false, yes/no or on/off");
}

absl::StatusOr<int64_t> ParseNonNegative(absl::string_view name, absl::string_view value,
                                         int64_t max) {
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &parsed) || parsed < 0 || parsed > max) {
    return BadVariable(name, value, absl::StrCat("a whole number from 0 to ", max));
  }
  return parsed;
}

// Prefixes an error from a parser with the variable it came from.
absl::Status NameVariable(const absl::Status& status, absl::string_view name) {
  return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
}

}  // namespace

absl::StatusOr<Settings> Settings::FromEnv() { return FromEnv(Settings()); }

absl::StatusOr<Settings> Settings::FromEnv(Settings base, const EnvLookup& lookup) {
  const EnvLookup& env = lookup ? lookup : EnvLookup(ProcessEnv);
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
  if (auto v = env("MODELPOOL_WORKERS_PER_DEVICE")) {
    MODELPOOL_ASSIGN_OR_RETURN(const int64_t n,
                               ParseNonNegative("MODELPOOL_WORKERS_PER_DEVICE", *v, 1024));
    if (n < 1) return BadVariable("MODELPOOL_WORKERS_PER_DEVICE", *v, "at least 1");
    s.workers_per_device = static_cast<int>(n);
  }
  if (auto v = env("MODELPOOL_LOAD_BALANCING")) {
    const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (lower == "round_robin") {
      s.load_balancing = LoadBalancing::kRoundRobin;
    } else if (lower == "least_busy") {
      s.load_balancing = LoadBalancing::kLeastBusy;
    } else {
      return BadVariable("MODELPOOL_LOAD_BALANCING", *v, "round_robin or least_busy");
    }
  }
  if (auto v = env("MODELPOOL_WORKER_POOL")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.worker_pool, ParseBool("MODELPOOL_WORKER_POOL", *v));
  }
  // The log level is not a setting of one manager: the default sink reads the variable itself.
  // A value it cannot read is refused here, where the program can still say so and stop.
  if (auto v = env("MODELPOOL_LOG_LEVEL"); v.has_value() && !ParseLogSeverity(*v).ok()) {
    return BadVariable("MODELPOOL_LOG_LEVEL", *v, "debug, info, warning or error");
  }
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
  if (workers_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers_per_device is ", workers_per_device, ": it must be at least 1"));
  }
  if (force_cpu && force_gpu) {
    return absl::InvalidArgumentError("force_cpu and force_gpu are both set");
  }
  if (vram_safety_margin_bytes < 0) {
    return absl::InvalidArgumentError("vram_safety_margin_bytes is negative");
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
