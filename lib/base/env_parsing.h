#ifndef MODELPOOL_LIB_BASE_ENV_PARSING_H_
#define MODELPOOL_LIB_BASE_ENV_PARSING_H_

// Readers for the values of `MODELPOOL_*` environment variables, shared by the settings of every
// layer. Each error is `InvalidArgument` naming the variable, its value and what was expected.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace modelpool::base_internal {

// The process environment's value of `name`, or nullopt when it is unset.
std::optional<std::string> ProcessEnv(const std::string& name);

absl::Status BadVariable(absl::string_view name, absl::string_view value,
                         absl::string_view expected);

// 1/0, true/false, yes/no, on/off (any case); empty is false.
absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view value);

// A whole number from 0 to `max`.
absl::StatusOr<int64_t> ParseNonNegative(absl::string_view name, absl::string_view value,
                                         int64_t max);

// A number in (`low`, `high`].
absl::StatusOr<double> ParseNumberAbove(absl::string_view name, absl::string_view value, double low,
                                        double high);

// A duration as Go and Abseil write them ("300ms", "5m", "1h30m", "-1s") or a whole number of
// seconds ("300", "-1"), within `bound` either way.
absl::StatusOr<absl::Duration> ParseDurationVar(absl::string_view name, absl::string_view value,
                                                absl::Duration bound);

// Prefixes an error from a parser with the variable it came from.
absl::Status NameVariable(const absl::Status& status, absl::string_view name);

}  // namespace modelpool::base_internal

#endif  // MODELPOOL_LIB_BASE_ENV_PARSING_H_
