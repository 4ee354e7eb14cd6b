#include "modelpool/workers/job.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace modelpool {

absl::string_view PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kCritical:
      return "critical";
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kLow:
      return "low";
    case Priority::kBatch:
      return "batch";
  }
  return "normal";
}

absl::StatusOr<Priority> ParsePriority(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  for (Priority p : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow,
                     Priority::kBatch}) {
    if (lower == PriorityName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("priority \"", name, "\" is not one of critical, high, normal, low, batch"));
}

absl::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kQueued:
      return "queued";
    case JobState::kLoading:
      return "loading";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kExpired:
      return "expired";
  }
  return "unknown";
}

bool IsFinal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled || state == JobState::kExpired;
}

}  // namespace modelpool
