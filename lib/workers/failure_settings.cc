#include "modelpool/workers/failure_settings.h"

#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/base/env_parsing.h"
#include "modelpool/base/status.h"

namespace modelpool {

using base_internal::BadVariable;
using base_internal::ParseBool;
using base_internal::ParseDurationVar;
using base_internal::ParseNonNegative;
using base_internal::ParseNumberAbove;

namespace {

// Backoffs and timeouts are seconds to hours; ten years stands for "never" without overflowing.
constexpr absl::Duration kLongest = absl::Hours(24 * 365 * 10);

// A number from 0 to `high`.
absl::StatusOr<double> NumberVar(const std::string& name, const std::string& value, double high) {
  MODELPOOL_ASSIGN_OR_RETURN(const double n, ParseNumberAbove(name, value, -1, high));
  if (n < 0) return BadVariable(name, value, absl::StrCat("a number from 0 to ", high));
  return n;
}

absl::StatusOr<absl::Duration> PositiveDurationVar(const std::string& name,
                                                   const std::string& value) {
  MODELPOOL_ASSIGN_OR_RETURN(const absl::Duration d, ParseDurationVar(name, value, kLongest));
  if (d <= absl::ZeroDuration()) return BadVariable(name, value, "a positive duration");
  return d;
}

}  // namespace

absl::StatusOr<FailureSettings> FailureSettings::FromEnv(FailureSettings base,
                                                         const Settings::EnvLookup& lookup) {
  const Settings::EnvLookup& env = lookup ? lookup : Settings::EnvLookup(base_internal::ProcessEnv);
  FailureSettings s = std::move(base);
  for (const auto& [name, field] :
       {std::pair{"MODELPOOL_RESTART_BACKOFF_BASE", &s.restart_backoff_base},
        {"MODELPOOL_RESTART_BACKOFF_CAP", &s.restart_backoff_cap},
        {"MODELPOOL_HEALTH_CHECK_TIMEOUT", &s.health_check_timeout},
        {"MODELPOOL_LIVENESS_TIMEOUT", &s.liveness_timeout},
        {"MODELPOOL_BREAKER_WINDOW", &s.breaker_window},
        {"MODELPOOL_BREAKER_COOLDOWN", &s.breaker_cooldown}}) {
    if (auto v = env(name)) {
      MODELPOOL_ASSIGN_OR_RETURN(*field, PositiveDurationVar(name, *v));
    }
  }
  if (auto v = env("MODELPOOL_EXECUTION_TIMEOUT")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.execution_timeout,
                               ParseDurationVar("MODELPOOL_EXECUTION_TIMEOUT", *v, kLongest));
    if (s.execution_timeout <= absl::ZeroDuration()) s.execution_timeout = absl::InfiniteDuration();
  }
  if (auto v = env("MODELPOOL_HEALTH_CHECK_INTERVAL")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.health_check_interval,
                               ParseDurationVar("MODELPOOL_HEALTH_CHECK_INTERVAL", *v, kLongest));
    if (s.health_check_interval < absl::ZeroDuration()) {
      return BadVariable("MODELPOOL_HEALTH_CHECK_INTERVAL", *v, "a duration of 0 or more");
    }
  }
  for (const auto& [name, field, high] :
       {std::tuple{"MODELPOOL_RESTART_JITTER", &s.restart_jitter, 1.0},
        {"MODELPOOL_MEMORY_PRESSURE", &s.memory_pressure, 1.0},
        {"MODELPOOL_LATENCY_FACTOR", &s.latency_factor, 1e6},
        {"MODELPOOL_BREAKER_ERROR_RATE", &s.breaker_error_rate, 1.0}}) {
    if (auto v = env(name)) {
      MODELPOOL_ASSIGN_OR_RETURN(*field, NumberVar(name, *v, high));
    }
  }
  for (const auto& [name, field] :
       {std::pair{"MODELPOOL_RESTART_MAX_ATTEMPTS", &s.restart_max_attempts},
        {"MODELPOOL_BREAKER_FAILURES", &s.breaker_failures},
        {"MODELPOOL_BREAKER_MIN_REQUESTS", &s.breaker_min_requests},
        {"MODELPOOL_BREAKER_PROBES", &s.breaker_probes}}) {
    if (auto v = env(name)) {
      MODELPOOL_ASSIGN_OR_RETURN(const int64_t n, ParseNonNegative(name, *v, 1 << 20));
      *field = static_cast<int>(n);
    }
  }
  if (auto v = env("MODELPOOL_OOM_SPLIT")) {
    MODELPOOL_ASSIGN_OR_RETURN(s.oom_split, ParseBool("MODELPOOL_OOM_SPLIT", *v));
  }
  if (absl::Status valid = s.Validate(); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failure settings from MODELPOOL_* environment variables: ", valid.message()));
  }
  return s;
}

absl::Status FailureSettings::Validate() const {
  auto bad = [](absl::string_view field, absl::string_view expected) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be ", expected));
  };
  if (restart_backoff_base <= absl::ZeroDuration()) return bad("restart_backoff_base", "positive");
  if (restart_backoff_cap < restart_backoff_base) {
    return bad("restart_backoff_cap", "at least restart_backoff_base");
  }
  if (!(restart_jitter >= 0 && restart_jitter <= 1)) return bad("restart_jitter", "from 0 to 1");
  if (restart_max_attempts < 1) return bad("restart_max_attempts", "at least 1");
  if (execution_timeout <= absl::ZeroDuration()) {
    return bad("execution_timeout", "positive (infinite for no limit)");
  }
  if (health_check_interval < absl::ZeroDuration())
    return bad("health_check_interval", "0 or more");
  if (health_check_timeout <= absl::ZeroDuration()) return bad("health_check_timeout", "positive");
  if (liveness_timeout <= absl::ZeroDuration()) return bad("liveness_timeout", "positive");
  if (!(memory_pressure > 0 && memory_pressure <= 1)) {
    return bad("memory_pressure", "above 0 and at most 1");
  }
  if (!(latency_factor >= 0)) return bad("latency_factor", "0 or more");
  if (latency_window < 1) return bad("latency_window", "at least 1");
  if (breaker_failures < 0 || breaker_min_requests < 0) {
    return bad("breaker_failures and breaker_min_requests", "0 or more");
  }
  if (!(breaker_error_rate >= 0 && breaker_error_rate <= 1)) {
    return bad("breaker_error_rate", "from 0 to 1");
  }
  if (breaker_window <= absl::ZeroDuration() || breaker_cooldown <= absl::ZeroDuration()) {
    return bad("breaker_window and breaker_cooldown", "positive");
  }
  if (breaker_probes < 1) return bad("breaker_probes", "at least 1");
  return absl::OkStatus();
}

}  // namespace modelpool
