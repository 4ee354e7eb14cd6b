#include "modelpool/workers/worker_settings.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "lib/base/env_parsing.h"
#include "modelpool/base/status.h"

namespace modelpool {

using base_internal::BadVariable;
using base_internal::ParseBool;
using base_internal::ParseDurationVar;
using base_internal::ParseNonNegative;

namespace {

// Keep-alive and aging are minutes or hours; ten years stands for "never" without overflowing.
constexpr absl::Duration kLongest = absl::Hours(24 * 365 * 10);

// A window longer than this would hold a request back for nothing.
constexpr absl::Duration kLongestWindow = absl::Seconds(10);
// Far above what one call on any device takes; keeps the token sums far from overflowing.
constexpr int64_t kMostBatchTokens = int64_t{1} << 30;

// A whole number from `min` to `max`.
absl::StatusOr<int> IntVar(const std::string& name, const std::string& value, int64_t min,
                           int64_t max) {
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t n, ParseNonNegative(name, value, max));
  if (n < min) return BadVariable(name, value, absl::StrCat("at least ", min));
  return static_cast<int>(n);
}

}  // namespace

absl::StatusOr<WorkerSettings> WorkerSettings::FromEnv() { return FromEnv(WorkerSettings()); }

absl::StatusOr<WorkerSettings> WorkerSettings::FromEnv(WorkerSettings base,
                                                       const Settings::EnvLookup& lookup) {
  const Settings::EnvLookup& env = lookup ? lookup : Settings::EnvLookup(base_internal::ProcessEnv);
  WorkerSettings s = std::move(base);
  if (auto v = env("MODELPOOL_WORKERS_PER_DEVICE")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.workers_per_device,
                               IntVar("MODELPOOL_WORKERS_PER_DEVICE", *v, 1, 1024));
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
  if (auto v = env("MODELPOOL_SCHEDULING_POLICY")) {
    s.policy = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (s.policy != "modelpool" && s.policy != "fifo-lru") {
      return BadVariable("MODELPOOL_SCHEDULING_POLICY", *v, "modelpool or fifo-lru");
    }
  }
  if (auto v = env("MODELPOOL_KEEP_ALIVE_GPU")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.keep_alive_gpu,
                               ParseDurationVar("MODELPOOL_KEEP_ALIVE_GPU", *v, kLongest));
  }
  if (auto v = env("MODELPOOL_KEEP_ALIVE_CPU")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.keep_alive_cpu,
                               ParseDurationVar("MODELPOOL_KEEP_ALIVE_CPU", *v, kLongest));
  }
  if (auto v = env("MODELPOOL_AGING_BOUND")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.aging_bound,
                               ParseDurationVar("MODELPOOL_AGING_BOUND", *v, kLongest));
    if (s.aging_bound <= absl::ZeroDuration()) {
      return BadVariable("MODELPOOL_AGING_BOUND", *v, "a positive duration");
    }
  }
  for (const auto& [name, field] :
       {std::pair{"MODELPOOL_MAX_SWITCHES_PER_HOUR", &s.max_switches_per_hour},
        {"MODELPOOL_MAX_INSTANCES_PER_MODEL", &s.max_instances_per_model},
        {"MODELPOOL_MAX_CONCURRENT_PER_MODEL", &s.max_concurrent_per_model},
        {"MODELPOOL_JOB_HISTORY", &s.job_history}}) {
    if (auto v = env(name)) {
      MODELPOOL_ASSIGN_OR_RETURN(*field, IntVar(name, *v, 0, int64_t{1} << 24));
    }
  }
  MODELPOOL_ASSIGN_OR_RETURN(s.failures, FailureSettings::FromEnv(std::move(s.failures), env));
  if (auto v = env("MODELPOOL_BATCH_WINDOW")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.batch_window,
                               ParseDurationVar("MODELPOOL_BATCH_WINDOW", *v, kLongestWindow));
    if (s.batch_window < absl::ZeroDuration()) {
      return BadVariable("MODELPOOL_BATCH_WINDOW", *v, "a duration of 0 (off) or more");
    }
  }
  if (auto v = env("MODELPOOL_MAX_BATCH_TOKENS")) {
    MODELPOOL_ASSIGN_OR_RETURN(
        s.max_batch_tokens, ParseNonNegative("MODELPOOL_MAX_BATCH_TOKENS", *v, kMostBatchTokens));
    if (s.max_batch_tokens < 1) return BadVariable("MODELPOOL_MAX_BATCH_TOKENS", *v, "at least 1");
  }
  if (absl::Status valid = s.Validate(); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker settings from MODELPOOL_* environment variables: ", valid.message()));
  }
  return s;
}

absl::Status WorkerSettings::Validate() const {
  if (workers_per_device < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers_per_device is ", workers_per_device, ": it must be at least 1"));
  }
  if (policy != "modelpool" && policy != "fifo-lru") {
    return absl::InvalidArgumentError(
        absl::StrCat("policy is \"", policy, "\": it must be modelpool or fifo-lru"));
  }
  if (aging_bound <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("aging_bound must be positive");
  }
  if (batch_window < absl::ZeroDuration() || max_batch_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_window is ", absl::FormatDuration(batch_window), " and max_batch_tokens ",
        max_batch_tokens, ": the window cannot be negative and the limit must be at least 1"));
  }
  if (max_switches_per_hour < 0 || max_instances_per_model < 0 || max_concurrent_per_model < 0 ||
      job_history < 0) {
    return absl::InvalidArgumentError(
        "max_switches_per_hour, max_instances_per_model, max_concurrent_per_model and "
        "job_history cannot be negative");
  }
  return failures.Validate();
}

}  // namespace modelpool
