#include "lib/base/env_parsing.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace modelpool::base_internal {

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

absl::StatusOr<double> ParseNumberAbove(absl::string_view name, absl::string_view value, double low,
                                        double high) {
  double parsed = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(value), &parsed) || !std::isfinite(parsed) ||
      parsed <= low || parsed > high) {
    return BadVariable(name, value, absl::StrCat("a number above ", low, " and at most ", high));
  }
  return parsed;
}

absl::StatusOr<absl::Duration> ParseDurationVar(absl::string_view name, absl::string_view value,
                                                absl::Duration bound) {
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  absl::Duration parsed;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds) && seconds >= -absl::ToInt64Seconds(bound) &&
      seconds <= absl::ToInt64Seconds(bound)) {
    return absl::Seconds(seconds);
  }
  if (absl::ParseDuration(text, &parsed) && parsed >= -bound && parsed <= bound) return parsed;
  return BadVariable(name, value,
                     absl::StrCat("a duration such as 300ms, 5m or -1 (seconds) within ",
                                  absl::FormatDuration(bound), " either way"));
}

absl::Status NameVariable(const absl::Status& status, absl::string_view name) {
  return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
}

}  // namespace modelpool::base_internal
